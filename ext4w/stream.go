package ext4w

import (
	"fmt"
	"io"
)

// span is a range of blocks [start, end).
type span struct{ start, end uint64 }

// stream hands out data blocks in address order, stepping over the
// regions that superblock and GDT backups will take, and batches the
// writes of consecutive blocks into large sequential WriteAt calls.
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
}

const streamBufSize = 4 << 20

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
// for block blk, flushing first when it does not continue the queue.
func (s *stream) write(blk uint64, p []byte) error {
	if len(s.buf) > 0 && s.bufStart+uint64(len(s.buf))/blockSize != blk {
		if err := s.flush(); err != nil {
			return err
		}
	}
	if len(s.buf) == 0 {
		s.bufStart = blk
		if len(p) >= streamBufSize {
			return s.writeAt(p, blk)
		}
	}
	s.buf = append(s.buf, p...)
	if len(s.buf) >= streamBufSize {
		return s.flush()
	}
	return nil
}

func (s *stream) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.writeAt(s.buf, s.bufStart)
	s.buf = s.buf[:0]
	return err
}

func (s *stream) writeAt(p []byte, blk uint64) error {
	n, err := s.out.WriteAt(p, int64(blk)*blockSize)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("ext4w: writing data at block %d: %w", blk, err)
	}
	return nil
}
