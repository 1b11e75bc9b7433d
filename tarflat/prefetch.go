package tarflat

import (
	"io"

	"github.com/ext4pack/ext4pack/spool"
)

// Prefetched is a tar stream decompressed ahead of its reading, on a
// goroutine of its own (see Prefetch). NewReader reads it as it would
// read the stream itself: the same compression found, the same bytes,
// errors and warnings, at the same places.
type Prefetched struct {
	sp    *spool.Spool
	ready chan struct{} // closed once the compression is known
	done  chan struct{} // closed when the goroutine has returned
	// Set before ready is closed:
	codec   string
	release func() // the decompressor's
	err     error  // opening the stream failed
}

// Sizes of the spools the decompressed bytes wait in. A stream being read
// now (NewReader's own, for gzip) waits for its reader beyond 1 MiB, four
// of the decoder's chunks: enough for the two goroutines not to wait for
// each other, little enough for image --image to stay within SPEC's 96
// MiB with two layers ahead. One read later (Prefetch) goes on into a
// temporary file, up to 4 GiB unread, so that a stream that decompresses
// to far more than a layer should (a bomb, trailing zeros) cannot fill
// the disk before its turn.
const (
	aheadMemory  = 1 << 20
	aheadFileCap = 4 << 30
)

// Prefetch starts decompressing the tar stream r (plain, gzip or zstd,
// told by its magic bytes as NewReader does) on a goroutine of its own,
// into memory up to 1 MiB, then into a temporary file in dir, which
// has no name there (package spool). Pass the result to NewReader when
// its turn comes; that Reader's Close stops the goroutine, and Close does
// when no Reader is made. r is read by that goroutine only, and not after
// Close returns.
func Prefetch(r io.Reader, dir string) *Prefetched {
	p := &Prefetched{sp: spool.New(aheadMemory, aheadFileCap, dir), ready: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		src, codec, release, err := openStream(r)
		p.codec, p.release, p.err = codec, release, err
		close(p.ready)
		if err != nil {
			p.sp.CloseWrite(err)
			return
		}
		p.fill(src)
	}()
	return p
}

// inflateAhead is false only in tests, for a judge that reads gzip as
// it always was: on the reader's goroutine.
var inflateAhead = true

// decodeAhead decompresses src, an open stream, on a goroutine of its own
// while its reader parses what was decoded before: the tar and the
// decompression each get a core. The goroutine waits when 1 MiB is
// decoded and not read.
func decodeAhead(src io.Reader, codec string, release func()) *Prefetched {
	p := &Prefetched{sp: spool.New(aheadMemory, 0, ""), ready: make(chan struct{}), done: make(chan struct{}), codec: codec, release: release}
	close(p.ready)
	go func() {
		defer close(p.done)
		p.fill(src)
	}()
	return p
}

// fill copies the decoded stream into the spool, and its end or error
// after it.
func (p *Prefetched) fill(src io.Reader) {
	buf := make([]byte, 256<<10)
	_, err := io.CopyBuffer(p.sp, onlyReader{src}, buf)
	p.sp.CloseWrite(err)
}

// onlyReader hides a WriterTo, so that CopyBuffer copies through its
// buffer in pieces the spool can take.
type onlyReader struct{ io.Reader }

// open waits until the compression is known and returns the decoded
// stream as openStream does.
func (p *Prefetched) open() (io.Reader, string, func(), error) {
	<-p.ready
	if p.err != nil {
		p.Close()
		return nil, "", nil, p.err
	}
	return p.sp, p.codec, func() { p.Close() }, nil
}

// Read reads the decoded stream.
func (p *Prefetched) Read(b []byte) (int, error) {
	<-p.ready
	return p.sp.Read(b)
}

// Close stops the decompression, waits for its goroutine, and releases
// the decompressor and the spool, its temporary file with it.
func (p *Prefetched) Close() error {
	err := p.sp.Close()
	<-p.done
	if p.release != nil {
		p.release()
		p.release = nil
	}
	return err
}
