// Package ctxio ends reads when a context is done, so that a cancelled
// build or bundle stops at its next read, or at once where a read is
// blocked on a stalled pipe, and its caller can remove what it wrote and
// return.
package ctxio

import (
	"context"
	"io"
	"os"
	"sync"
)

// Reader reads R until Ctx is done; from then on Read returns Ctx's
// error. It checks Ctx before each read of R, so it suits readers whose
// reads end by themselves: files, sections of them, network streams tied
// to Ctx. NewReader also cuts short a read that blocks.
type Reader struct {
	Ctx context.Context
	R   io.Reader
}

// Read reads from R unless Ctx is done.
func (r Reader) Read(p []byte) (int, error) {
	if err := r.Ctx.Err(); err != nil {
		return 0, err
	}
	return r.R.Read(p)
}

// NewReader returns a reader of r that returns ctx's error as soon as ctx
// is done. A regular file is read as Reader reads it: its reads end by
// themselves. Anything else (a pipe, standard input, a socket, whatever a
// caller passes) is read on a goroutine of its own, so that a Read
// blocked on a writer that stalls returns when ctx is done. The blocked
// read of r goes on in the background, into a buffer of the reader's own,
// until r gives it something or fails; then it is dropped. Close ends the
// goroutine (once such a read has returned); it does not close r.
func NewReader(ctx context.Context, r io.Reader) io.ReadCloser {
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return nopCloser{Reader{ctx, r}}
		}
	}
	return &pipeReader{ctx: ctx, r: r}
}

type nopCloser struct{ Reader }

func (nopCloser) Close() error { return nil }

// pipeReader reads r on its own goroutine, one read at a time: Read hands
// the goroutine a buffer and waits for the read's result or for ctx.
type pipeReader struct {
	ctx    context.Context
	r      io.Reader
	start  sync.Once
	want   chan []byte // the buffer of the next read of r
	got    chan result // its outcome; room for one, so that an abandoned read never blocks on it
	buf    []byte      // read into by the goroutine between a send on want and the receipt on got
	closed bool
}

type result struct {
	n   int
	err error
}

func (p *pipeReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	p.start.Do(func() {
		p.want, p.got = make(chan []byte), make(chan result, 1)
		go func() {
			for buf := range p.want {
				n, err := p.r.Read(buf)
				p.got <- result{n, err}
			}
		}()
	})
	// No read is in flight here (the last one returned, or ctx is done
	// and Read never gets this far again), so buf may be replaced.
	if cap(p.buf) < len(b) {
		p.buf = make([]byte, len(b))
	}
	p.want <- p.buf[:len(b)]
	select {
	case res := <-p.got:
		return copy(b, p.buf[:res.n]), res.err
	case <-p.ctx.Done():
		// The read goes on into p.buf, which nothing else touches
		// from now on: every later Read stops at the check above.
		return 0, p.ctx.Err()
	}
}

func (p *pipeReader) Close() error {
	if p.want != nil && !p.closed {
		close(p.want)
	}
	p.closed = true
	return nil
}
