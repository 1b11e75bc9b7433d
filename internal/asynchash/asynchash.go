// Package asynchash hashes on another goroutine: Write copies the bytes
// and returns, and a goroutine feeds them to the hash. Checking a layer's
// digests then costs the streaming pipeline a copy instead of a hash: on
// two cores, the hash runs beside the tar's decoding rather than in its
// way.
package asynchash

import (
	"hash"
	"sync"
)

const (
	chunkSize = 1 << 20
	queued    = 4 // chunks waiting: memory stays bounded
)

// Hash is a hash.Hash whose Write hands the work to a goroutine. It is
// not safe for concurrent use, as hash.Hash is not.
type Hash struct {
	h     hash.Hash
	buf   []byte
	work  chan []byte
	free  chan []byte
	done  sync.WaitGroup
	start sync.Once
}

// New returns h made asynchronous. Call Sum (or Close) to stop its
// goroutine; one that is never summed leaks it.
func New(h hash.Hash) *Hash { return &Hash{h: h} }

func (a *Hash) run() {
	a.work = make(chan []byte, queued)
	a.free = make(chan []byte, queued+1)
	a.done.Add(1)
	go func() {
		defer a.done.Done()
		for b := range a.work {
			a.h.Write(b)
			select {
			case a.free <- b[:0]:
			default:
			}
		}
	}()
}

// Write queues a copy of p for hashing. It never fails.
func (a *Hash) Write(p []byte) (int, error) {
	a.start.Do(a.run)
	n := len(p)
	for len(p) > 0 {
		if a.buf == nil {
			select {
			case a.buf = <-a.free:
			default:
				a.buf = make([]byte, 0, chunkSize)
			}
		}
		k := copy(a.buf[len(a.buf):cap(a.buf)], p)
		a.buf = a.buf[:len(a.buf)+k]
		p = p[k:]
		if len(a.buf) == cap(a.buf) {
			a.work <- a.buf
			a.buf = nil
		}
	}
	return n, nil
}

// Sum waits for what was written to be hashed and appends the digest to
// b. The Hash cannot be written to afterwards.
func (a *Hash) Sum(b []byte) []byte {
	a.Close()
	return a.h.Sum(b)
}

// Close stops the goroutine once it has hashed everything written.
func (a *Hash) Close() {
	a.start.Do(a.run)
	if a.work == nil {
		return
	}
	if len(a.buf) > 0 {
		a.work <- a.buf
		a.buf = nil
	}
	close(a.work)
	a.done.Wait()
	a.work = nil
}

// Reset is not supported: a Hash is used once.
func (a *Hash) Reset() { panic("asynchash: Reset") }

// Size is the underlying hash's.
func (a *Hash) Size() int { return a.h.Size() }

// BlockSize is the underlying hash's.
func (a *Hash) BlockSize() int { return a.h.BlockSize() }
