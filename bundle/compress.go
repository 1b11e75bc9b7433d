package bundle

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"

	"github.com/ext4pack/ext4pack/internal/ctxio"
)

// compress writes s to dst as a zstd stream of independent frames: frame i
// holds bytes i*frameSize up to (i+1)*frameSize of s. Up to p.Workers
// workers compress frames at once and the frames reach dst in order, so
// the output depends only on s and the level, window and frame size, never
// on the plan, the number of workers or GOMAXPROCS. Each frame is a
// standard zstd frame with its content size and checksum; concatenated
// frames are one valid zstd stream for any decoder.
//
// Memory stays within the plan: each worker holds one encoder, reused from
// frame to frame. The frame being written goes straight to dst as it is
// compressed; the others' output waits in at most p.HeldBytes of chunks,
// and a worker that finds none free waits until its frame's turn.
//
// It returns the SHA-256 and length of what it wrote. onFrame, when not nil,
// is called after each frame is written with the stream offset it ends at.
func compress(ctx context.Context, dst io.Writer, s *tarStream, o options, p Plan, onFrame func(end int64)) (sum [sha256.Size]byte, written int64, err error) {
	frames := (s.size + o.frameSize - 1) / o.frameSize
	workers := int(min(int64(p.Workers), frames))
	out := &sink{
		dst:       dst,
		name:      writerName(dst),
		h:         sha256.New(),
		held:      map[int64]*heldFrame{},
		maxChunks: int(p.HeldBytes / heldChunk),
	}
	out.cond.L = &out.mu
	if onFrame != nil {
		out.onFrame = func(i int64) { onFrame(min((i+1)*o.frameSize, s.size)) }
	}
	// A cancelled ctx wakes the workers that wait for room, and stops
	// those that compress at their next read (ctxio.Reader).
	stop := context.AfterFunc(ctx, func() { out.fail(ctx.Err()) })
	defer stop()

	var next atomic.Int64 // the next frame to hand out
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			w := frameWorker{ctx: ctx, s: s, o: o}
			for {
				// Frames are taken in order, so the frame being written
				// is always one a worker is compressing or has
				// finished: the sink never waits for a frame nobody
				// has.
				i := next.Add(1) - 1
				if i >= frames || out.failed() != nil {
					return
				}
				if err := w.compress(i, frameWriter{out, i}); err != nil {
					out.fail(err)
					return
				}
				out.finish(i)
			}
		})
	}
	// Every worker has returned when Wait does, so that none still reads
	// the image when compress returns and the caller closes it.
	wg.Wait()
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.err != nil {
		return sum, out.written, out.err
	}
	if out.head != frames {
		panic(fmt.Sprintf("bundle: %d of %d frames written and no error", out.head, frames))
	}
	out.h.Sum(sum[:0])
	return sum, out.written, nil
}

// heldChunk is the unit of memory in which frames finished ahead of their
// turn hold their output: large enough to take a few compressed blocks,
// small enough that the last one of a frame wastes little.
const heldChunk = 256 << 10

// sink puts the frames' output in order. The frame at head is written to
// dst as its worker compresses it; the output of later frames is held in
// chunks until head reaches them. Every field is guarded by mu.
type sink struct {
	mu   sync.Mutex
	cond sync.Cond // signalled when head moves, chunks are freed, or err is set

	dst     io.Writer
	name    string    // dst in messages
	h       hash.Hash // of everything written to dst
	written int64
	head    int64 // the frame being written to dst

	held      map[int64]*heldFrame // output of frames after head
	spare     [][]byte             // chunks not in use, empty
	chunks    int                  // chunks allocated
	maxChunks int                  // the most there may be

	onFrame func(i int64) // called once frame i is all written
	// err is the first error of any worker or of dst, and sticky: once
	// set, nothing more is written and every worker stops.
	err error
}

// heldFrame is the output of a frame whose turn has not come.
type heldFrame struct {
	chunks [][]byte
	done   bool // the frame is complete
}

// frameWriter is what a worker's encoder writes frame i to.
type frameWriter struct {
	s *sink
	i int64
}

func (w frameWriter) Write(p []byte) (int, error) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for len(p) > 0 {
		if s.err != nil {
			return n, s.err
		}
		if s.head == w.i {
			// The chunks held before the frame's turn came were written
			// by promote, before head reached it.
			if err := s.emit(p); err != nil {
				return n, err
			}
			return n + len(p), nil
		}
		hf := s.held[w.i]
		if hf == nil {
			hf = &heldFrame{}
			s.held[w.i] = hf
		}
		if k := len(hf.chunks) - 1; k >= 0 && len(hf.chunks[k]) < cap(hf.chunks[k]) {
			c := hf.chunks[k]
			m := min(cap(c)-len(c), len(p))
			hf.chunks[k] = append(c, p[:m]...)
			p, n = p[m:], n+m
			continue
		}
		switch {
		case len(s.spare) > 0:
			hf.chunks = append(hf.chunks, s.spare[len(s.spare)-1])
			s.spare = s.spare[:len(s.spare)-1]
		case s.chunks < s.maxChunks:
			hf.chunks = append(hf.chunks, make([]byte, 0, heldChunk))
			s.chunks++
		default:
			// No room: wait for chunks to be freed or for this
			// frame's turn. The frame at head never waits here, so
			// head keeps moving.
			s.cond.Wait()
		}
	}
	return n, nil
}

// emit writes p to dst. Called with mu held.
func (s *sink) emit(p []byte) error {
	n, err := s.dst.Write(p)
	s.written += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.setErr(fmt.Errorf("bundle: writing %s: %w", s.name, err))
		return s.err
	}
	s.h.Write(p) // hash.Hash's Write never fails.
	return nil
}

// finish records that frame i is complete, and moves head past it and past
// every complete frame after it.
func (s *sink) finish(i int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	if i != s.head {
		hf := s.held[i]
		if hf == nil {
			hf = &heldFrame{}
			s.held[i] = hf
		}
		hf.done = true
		return
	}
	s.advance()
}

// advance moves head past the frame there, which is complete, writes out
// what the next one holds, and goes on while that one is complete too.
// Called with mu held.
func (s *sink) advance() {
	defer s.cond.Broadcast()
	for {
		if s.onFrame != nil {
			s.onFrame(s.head)
		}
		s.head++
		hf := s.held[s.head]
		if hf == nil {
			return
		}
		delete(s.held, s.head)
		for _, c := range hf.chunks {
			if err := s.emit(c); err != nil {
				return
			}
			s.spare = append(s.spare, c[:0])
		}
		if !hf.done {
			return
		}
	}
}

// fail records err unless an error came first, and wakes every waiting
// worker.
func (s *sink) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setErr(err)
}

// setErr is fail with mu held.
func (s *sink) setErr(err error) {
	if s.err == nil {
		s.err = err
	}
	s.cond.Broadcast()
}

// failed returns the sticky error, nil while there is none.
func (s *sink) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// frameWorker compresses frames with one encoder of its own, reused from
// frame to frame.
type frameWorker struct {
	ctx context.Context
	s   *tarStream
	o   options
	enc *zstd.Encoder
}

// compress compresses frame i into w.
func (w *frameWorker) compress(i int64, dst io.Writer) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.enc == nil {
		// Concurrency 1: the encoder compresses on the calling goroutine,
		// block after block, so its output is a function of its input.
		// The parallelism is across frames. The window and the history's
		// size are functions of the options (encoderWindow,
		// lowMemEncoder), as the output must be.
		window := encoderWindow(w.o.windowSize, w.o.frameSize)
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(w.o.level),
			zstd.WithWindowSize(window),
			zstd.WithLowerEncoderMem(lowMemEncoder(window, w.o.frameSize)),
			zstd.WithEncoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("bundle: zstd encoder: %w", err)
		}
		w.enc = enc
	}
	off := i * w.o.frameSize
	n := min(w.o.frameSize, w.s.size-off)
	// The content size in the frame header lets decoders size their
	// buffers, and makes Close check that n bytes went in.
	w.enc.ResetContentSize(dst, n)
	// Stopped at its next read once ctx is done, so that a cancelled
	// Write does not finish compressing the frames it has started.
	src := ctxio.Reader{Ctx: w.ctx, R: io.NewSectionReader(w.s, off, n)}
	if _, err := w.enc.ReadFrom(src); err != nil {
		return err
	}
	if err := w.enc.Close(); err != nil {
		return fmt.Errorf("bundle: zstd frame %d: %w", i, err)
	}
	return nil
}

// writerName names w in errors: its file name when it has one.
func writerName(w io.Writer) string {
	if f, ok := w.(interface{ Name() string }); ok {
		return f.Name()
	}
	return "bundle output"
}
