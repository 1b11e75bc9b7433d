package imagesrc

import (
	"io"
	"sync"
)

// Read-ahead of a registry blob: a goroutine keeps reading the HTTP body
// while the layer is built, so that the download and the build overlap
// instead of taking turns. It holds at most aheadChunks chunks: memory
// stays bounded whatever the layer's size.
const (
	aheadChunk  = 1 << 20
	aheadChunks = 8
)

type ahead struct {
	rc    io.ReadCloser
	ch    chan aheadChunkT
	free  chan []byte
	cur   []byte // unread part of base
	base  []byte // the chunk cur is in, handed back when read
	err   error
	done  chan struct{}
	close sync.Once
}

type aheadChunkT struct {
	b   []byte
	err error
}

func readAhead(rc io.ReadCloser) io.ReadCloser {
	a := &ahead{rc: rc, ch: make(chan aheadChunkT, aheadChunks), free: make(chan []byte, aheadChunks+1), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *ahead) run() {
	defer close(a.ch)
	for {
		var b []byte
		select {
		case b = <-a.free:
		default:
			b = make([]byte, aheadChunk)
		}
		n, err := io.ReadFull(a.rc, b[:cap(b)])
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case a.ch <- aheadChunkT{b[:n], err}:
		case <-a.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (a *ahead) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		c, ok := <-a.ch
		if !ok {
			return 0, io.ErrUnexpectedEOF
		}
		a.cur, a.base, a.err = c.b, c.b, c.err
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	if len(a.cur) == 0 {
		select {
		case a.free <- a.base[:0]:
		default:
		}
	}
	return n, nil
}

func (a *ahead) Close() error {
	a.close.Do(func() { close(a.done) })
	return a.rc.Close()
}
