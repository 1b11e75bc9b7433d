package inflate

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// gzip header fields (RFC 1952 2.3.1).
const (
	gzipID1     = 0x1f
	gzipID2     = 0x8b
	gzipDeflate = 8
	flagHdrCrc  = 1 << 1
	flagExtra   = 1 << 2
	flagName    = 1 << 3
	flagComment = 1 << 4
	// maxString bounds FNAME and FCOMMENT as compress/gzip (and
	// klauspost's fork, which ext4pack used before) do: a longer one is a
	// bad header there, so it is here.
	maxString = 512
)

// GzipReader decodes a gzip file: every member, one after another, each
// one's CRC-32 and ISIZE checked at its end.
type GzipReader struct {
	d       decoder
	chunk   []byte // decoded, not read yet
	crc     uint32 // of the member's bytes decoded so far
	size    uint32 // and their count, mod 2^32 as ISIZE
	members int    // complete members
	// err is sticky: io.EOF after the last member checked out, else why
	// decoding stopped. Bytes decoded before it are still handed out.
	err error
}

// NewGzipReader returns a GzipReader of the gzip file in r, after reading
// its first member's header. An empty r is io.EOF, as in compress/gzip.
func NewGzipReader(r io.Reader) (*GzipReader, error) {
	z := new(GzipReader)
	if err := z.Reset(r); err != nil {
		return nil, err
	}
	return z, nil
}

// Reset makes z read a new gzip file from r, keeping its buffers, and
// reads the first member's header.
func (z *GzipReader) Reset(r io.Reader) error {
	z.d.reset(r)
	z.chunk, z.crc, z.size, z.members, z.err = nil, 0, 0, 0, nil
	if err := z.header(); err != nil {
		if err != io.EOF {
			err = noEOF(err)
		}
		z.err = err
		return err
	}
	return nil
}

// Members is the number of members read to their end and checked.
func (z *GzipReader) Members() int { return z.members }

// Read reads decoded bytes; io.EOF comes after the last member checked
// out.
func (z *GzipReader) Read(p []byte) (int, error) {
	for len(z.chunk) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		z.step()
	}
	n := copy(p, z.chunk)
	z.chunk = z.chunk[n:]
	return n, nil
}

// WriteTo writes the decoded bytes to w, without a copy in between.
func (z *GzipReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(z.chunk) > 0 {
			n, err := w.Write(z.chunk)
			total += int64(n)
			z.chunk = z.chunk[n:]
			if err != nil {
				return total, err
			}
			continue
		}
		if z.err == io.EOF {
			return total, nil
		}
		if z.err != nil {
			return total, z.err
		}
		z.step()
	}
}

// step decodes the next chunk into z.chunk; at a member's end it checks
// the trailer and reads the next member's header, if there is one.
func (z *GzipReader) step() {
	chunk, done, err := z.d.decode()
	z.crc = crc32.Update(z.crc, crc32.IEEETable, chunk)
	z.size += uint32(len(chunk))
	z.chunk = chunk
	if err != nil {
		z.err = noEOF(err)
		return
	}
	if !done {
		return
	}
	if err := z.trailer(); err != nil {
		z.err = err
		return
	}
	z.members++
	z.crc, z.size = 0, 0
	if !z.d.moreInput() {
		if z.d.rerr != nil {
			z.err = z.d.rerr
			return
		}
		z.err = io.EOF
		return
	}
	if err := z.header(); err != nil {
		if z.d.rerr != nil && errors.Is(err, z.d.rerr) {
			z.err = err
			return
		}
		z.err = fmt.Errorf("%w (after member %d: %v)", ErrTrailingData, z.members, err)
		return
	}
	z.d.newStream()
}

// trailer checks a member's CRC-32 and ISIZE (RFC 1952 2.3.1).
func (z *GzipReader) trailer() error {
	z.d.alignByte()
	var b [8]byte
	for i := range b {
		c, err := z.d.readByte()
		if err != nil {
			return noEOF(err)
		}
		b[i] = c
	}
	crc := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	size := uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24
	switch {
	case crc != z.crc:
		return fmt.Errorf("%w: member %d's CRC-32 is %08x, its data's %08x", ErrChecksum, z.members+1, crc, z.crc)
	case size != z.size:
		return fmt.Errorf("%w: member %d's ISIZE is %d, its data's length mod 2^32 %d", ErrChecksum, z.members+1, size, z.size)
	}
	return nil
}

// header reads a member's header (RFC 1952 2.3.1), accepting what
// compress/gzip accepts. It returns io.EOF if the input has no byte at
// all.
func (z *GzipReader) header() error {
	if !z.d.moreInput() {
		if z.d.rerr != nil {
			return z.d.rerr
		}
		return io.EOF
	}
	var h [10]byte
	for i := range h {
		c, err := z.d.readByte()
		if err != nil {
			return noEOF(err)
		}
		h[i] = c
	}
	if h[0] != gzipID1 || h[1] != gzipID2 {
		return fmt.Errorf("%w: no gzip magic number", ErrHeader)
	}
	if h[2] != gzipDeflate {
		return fmt.Errorf("%w: compression method %d, not deflate (8)", ErrHeader, h[2])
	}
	flg := h[3]
	hcrc := crc32.ChecksumIEEE(h[:])
	read := func() (byte, error) {
		c, err := z.d.readByte()
		if err != nil {
			return 0, noEOF(err)
		}
		hcrc = crc32.Update(hcrc, crc32.IEEETable, []byte{c})
		return c, nil
	}
	if flg&flagExtra != 0 {
		lo, err := read()
		if err != nil {
			return err
		}
		hi, err := read()
		if err != nil {
			return err
		}
		for range int(lo) | int(hi)<<8 {
			if _, err := read(); err != nil {
				return err
			}
		}
	}
	for _, f := range []struct {
		flag byte
		name string
	}{{flagName, "FNAME"}, {flagComment, "FCOMMENT"}} {
		if flg&f.flag == 0 {
			continue
		}
		for i := 0; ; i++ {
			if i >= maxString {
				return fmt.Errorf("%w: %s is longer than %d bytes", ErrHeader, f.name, maxString-1)
			}
			c, err := read()
			if err != nil {
				return err
			}
			if c == 0 {
				break
			}
		}
	}
	if flg&flagHdrCrc != 0 {
		want := uint16(hcrc)
		lo, err := z.d.readByte()
		if err != nil {
			return noEOF(err)
		}
		hi, err := z.d.readByte()
		if err != nil {
			return noEOF(err)
		}
		if got := uint16(lo) | uint16(hi)<<8; got != want {
			return fmt.Errorf("%w: the header's CRC-16 is %04x, its bytes' %04x", ErrHeader, got, want)
		}
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
