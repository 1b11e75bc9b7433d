package ext4w

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// span is a range of blocks [start, end).
type span struct{ start, end uint64 }

// stream hands out data blocks in address order, stepping over the
// regions that superblock and GDT backups will take, and batches the
// writes of consecutive blocks into large sequential WriteAt calls. A
// background goroutine hashes and writes each full batch while the
// caller fills the next, so the tar's parsing, the content hash and the
// writes use two cores.
type stream struct {
	out io.WriterAt
	// region is the number of blocks reserved at the start of each backup
	// group: exact when the size is fixed, else the worst case.
	region uint64
	next   uint64 // next block to hand out
	limit  uint64 // blocks data may reach; 0: no limit
	spans  []span // blocks handed out, merged

	buf      []byte // pending data for blocks from bufStart on
	bufStart uint64

	// The background writer: batches go out on jobs, empty buffers come
	// back on free. sum digests every data byte in write order: each
	// batch's crc32c (hardware-fast, where sha256 would cost as much as
	// the rest of the run) with its place and length. It feeds only the
	// default UUID, which needs to tell inputs apart, not resist
	// attackers. sum belongs to the writer goroutine until wait returns.
	jobs    chan streamJob
	free    chan []byte
	results chan error
	sum     hash.Hash
	err     error // the writer's first error, read after wait
	started bool
}

type streamJob struct {
	p       []byte
	blk     uint64
	barrier bool
}

const (
	streamBufSize = 4 << 20
	streamBufs    = 3 // one filling, one queued, one being written
)

func newStream(out io.WriterAt, region uint64) stream {
	return stream{out: out, region: region, sum: sha256.New()}
}

func (s *stream) start() {
	s.started = true
	s.jobs = make(chan streamJob, streamBufs)
	s.free = make(chan []byte, streamBufs)
	s.results = make(chan error, 1)
	for i := 0; i < streamBufs-1; i++ {
		s.free <- make([]byte, 0, streamBufSize)
	}
	s.buf = make([]byte, 0, streamBufSize)
	go s.run()
}

// run is the writer goroutine. After an error it still drains the jobs,
// so that the caller never blocks, and reports the error at the barrier.
func (s *stream) run() {
	var err error
	for j := range s.jobs {
		if j.barrier {
			s.results <- err
			err = nil
			continue
		}
		if err == nil {
			var rec [20]byte
			binary.LittleEndian.PutUint64(rec[0:], j.blk)
			binary.LittleEndian.PutUint64(rec[8:], uint64(len(j.p)))
			binary.LittleEndian.PutUint32(rec[16:], crc32.Checksum(j.p, castagnoli))
			s.sum.Write(rec[:])
			err = writeBlocks(s.out, j.p, j.blk)
		}
		s.free <- j.p[:0]
	}
}

func writeBlocks(out io.WriterAt, p []byte, blk uint64) error {
	n, err := out.WriteAt(p, int64(blk)*blockSize)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("ext4w: writing data at block %d: %w", blk, err)
	}
	return nil
}

// skipReserved moves next past a backup region it stands in.
func (s *stream) skipReserved() {
	g := s.next / blocksPerGroup
	if hasBackup(g) && s.next < g*blocksPerGroup+s.region {
		s.next = g*blocksPerGroup + s.region
	}
}

// alloc hands out up to n contiguous blocks and returns the first and the
// count, which is less than n where a backup region interrupts. ok is
// false when the limit is reached; the caller then only counts.
func (s *stream) alloc(n uint64) (start, got uint64, ok bool) {
	s.skipReserved()
	start = s.next
	g := start / blocksPerGroup
	end := start + n
	// Stop before the next backup group's region.
	for ng := g + 1; ng*blocksPerGroup < end; ng++ {
		if hasBackup(ng) {
			end = ng * blocksPerGroup
			break
		}
	}
	if s.limit != 0 && end > s.limit {
		return 0, 0, false
	}
	got = end - start
	s.next = end
	if k := len(s.spans); k > 0 && s.spans[k-1].end == start {
		s.spans[k-1].end = end
	} else {
		s.spans = append(s.spans, span{start, end})
	}
	return start, got, true
}

// write queues p (whole blocks, the last one zero-padded by the caller)
// for block blk, handing the batch to the writer first when p does not
// continue it.
func (s *stream) write(blk uint64, p []byte) {
	if !s.started {
		s.start()
	}
	if len(s.buf) > 0 && s.bufStart+uint64(len(s.buf))/blockSize != blk {
		s.flush()
	}
	for len(p) > 0 {
		if len(s.buf) == 0 {
			s.bufStart = blk
		}
		k := min(len(p), streamBufSize-len(s.buf))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		blk += uint64(k / blockSize)
		if len(s.buf) == streamBufSize {
			s.flush()
		}
	}
}

// flush hands the pending batch to the writer goroutine.
func (s *stream) flush() {
	if len(s.buf) == 0 {
		return
	}
	s.jobs <- streamJob{p: s.buf, blk: s.bufStart}
	s.buf = <-s.free
}

// wait flushes and waits until every queued batch is on disk, and returns
// the first write error.
func (s *stream) wait() error {
	if !s.started {
		return nil
	}
	s.flush()
	s.jobs <- streamJob{barrier: true}
	if err := <-s.results; err != nil && s.err == nil {
		s.err = err
	}
	return s.err
}

// stop ends the writer goroutine and lets go of the batch buffers, so
// that the collector can give their 12 MiB to what Close builds.
func (s *stream) stop() {
	if s.started {
		close(s.jobs)
		s.started = false
		for len(s.free) > 0 {
			<-s.free
		}
		s.buf = nil
	}
}
