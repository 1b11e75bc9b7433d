package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// compress writes s to dst as a zstd stream of independent frames: frame i
// holds bytes i*frameSize up to (i+1)*frameSize of s. Up to o.concurrency
// workers compress frames at once and the frames are written in order, so
// the output depends only on s and the level, window and frame size, never
// on the number of workers or GOMAXPROCS. Each frame is a standard zstd frame
// with its content size and checksum; concatenated frames are one valid zstd
// stream for any decoder.
//
// It returns the SHA-256 and length of what it wrote. onFrame, when not nil,
// is called after each frame is written with the stream offset it ends at.
func compress(ctx context.Context, dst io.Writer, s *tarStream, o options, onFrame func(end int64)) (sum [sha256.Size]byte, written int64, err error) {
	frames := (s.size + o.frameSize - 1) / o.frameSize
	workers := int(min(int64(o.concurrency), frames))

	// Deferred calls run last first: cancel stops the dispatcher and the
	// workers, then wg.Wait waits for them, so that none still reads the
	// image when compress returns and the caller closes it.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// inFlight bounds the frames handed to workers but not yet written, so
	// that memory stays bounded when the writer is slower than the
	// workers, or a slow frame holds up later ones. The dispatcher takes
	// a slot per frame and the writer gives it back once the frame is
	// written.
	inFlight := int64(workers) + 1
	slots := make(chan struct{}, inFlight)
	// Frame i's output goes to results[i%inFlight]. Frame i+inFlight is
	// dispatched only after frame i is written, so the channel is empty
	// by then; its buffer of 1 means a worker never waits for the writer.
	results := make([]chan frameResult, inFlight)
	for i := range results {
		results[i] = make(chan frameResult, 1)
	}
	free := make(chan *bytes.Buffer, inFlight)
	jobs := make(chan int64)

	wg.Go(func() {
		defer close(jobs)
		for i := range frames {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	})
	for range workers {
		wg.Go(func() {
			w := frameWorker{ctx: ctx, s: s, o: o, free: free}
			for i := range jobs {
				results[i%inFlight] <- w.compress(i)
			}
		})
	}
	h := sha256.New()
	out := writerName(dst)
	for i := range frames {
		var r frameResult
		select {
		case r = <-results[i%inFlight]:
		case <-ctx.Done():
			return sum, written, ctx.Err()
		}
		if r.err != nil {
			return sum, written, r.err
		}
		n, err := dst.Write(r.buf.Bytes())
		written += int64(n)
		if err == nil && n < r.buf.Len() {
			err = io.ErrShortWrite
		}
		if err != nil {
			return sum, written, fmt.Errorf("bundle: writing %s: %w", out, err)
		}
		h.Write(r.buf.Bytes()) // hash.Hash's Write never fails.
		r.buf.Reset()
		select {
		case free <- r.buf:
		default:
		}
		<-slots
		if onFrame != nil {
			onFrame(min((i+1)*o.frameSize, s.size))
		}
	}
	h.Sum(sum[:0])
	return sum, written, nil
}

// frameResult is one compressed frame, or why there is none.
type frameResult struct {
	buf *bytes.Buffer
	err error
}

// frameWorker compresses frames with one encoder of its own, reused from
// frame to frame.
type frameWorker struct {
	ctx  context.Context
	s    *tarStream
	o    options
	free chan *bytes.Buffer
	enc  *zstd.Encoder
}

func (w *frameWorker) compress(i int64) frameResult {
	if err := w.ctx.Err(); err != nil {
		return frameResult{err: err}
	}
	if w.enc == nil {
		// Concurrency 1: the encoder compresses on the calling goroutine,
		// block after block, so its output is a function of its input.
		// The parallelism is across frames.
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(w.o.level),
			zstd.WithWindowSize(w.o.windowSize),
			zstd.WithEncoderConcurrency(1))
		if err != nil {
			return frameResult{err: fmt.Errorf("bundle: zstd encoder: %w", err)}
		}
		w.enc = enc
	}
	var buf *bytes.Buffer
	select {
	case buf = <-w.free:
	default:
		buf = new(bytes.Buffer)
	}

	off := i * w.o.frameSize
	n := min(w.o.frameSize, w.s.size-off)
	// The content size in the frame header lets decoders size their
	// buffers, and makes Close check that n bytes went in.
	w.enc.ResetContentSize(buf, n)
	src := ctxReader{ctx: w.ctx, r: io.NewSectionReader(w.s, off, n)}
	if _, err := w.enc.ReadFrom(&src); err != nil {
		return frameResult{err: err}
	}
	if err := w.enc.Close(); err != nil {
		return frameResult{err: fmt.Errorf("bundle: zstd frame %d: %w", i, err)}
	}
	return frameResult{buf: buf}
}

// ctxReader stops reading once ctx is done, so that a cancelled Write does
// not finish compressing the frames it has started.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// writerName names w in errors: its file name when it has one.
func writerName(w io.Writer) string {
	if f, ok := w.(interface{ Name() string }); ok {
		return f.Name()
	}
	return "bundle output"
}
