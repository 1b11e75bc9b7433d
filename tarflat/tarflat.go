// Package tarflat reads a rootfs tar stream (plain, gzip or zstd) and
// turns it into the flat list of operations an ext4 image is built from,
// under SPEC's "Tar input rules": names cleaned, whiteouts applied, PAX
// xattrs decoded, every entry type and limit checked. Reader has
// archive/tar's shape: Next returns one entry at a time and io.EOF at the
// end, and the Reader reads the current entry's data. Copy feeds a Reader
// into an ext4w.Writer and gathers the Info a bundle's defaults come from.
//
// The tar format itself (ustar, pax, GNU, star, v7, and GNU's four sparse
// dialects) is decoded here, not by archive/tar: Copy hands a sparse
// member's holes to ext4w as holes, so a small tar that claims terabytes
// of holes costs no more than its real data.
package tarflat

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/inflate"
)

// Op is what an Entry asks of the image.
type Op uint8

// The operations an entry becomes.
const (
	OpCreate Op = iota + 1 // create or replace Name as File describes
	OpLink                 // make Name another name of Target
	OpRemove               // remove Name and what is under it (a whiteout)
	OpOpaque               // hide what lower layers put in directory Name (an image layer's opaque marker)
)

// Entry is one normalised tar entry.
type Entry struct {
	Op     Op
	Name   string     // cleaned: relative, no "./", no trailing "/"; "." is the root
	Target string     // OpLink: the cleaned name linked to
	File   ext4w.File // OpCreate
	// Raw is the entry's name as the tar has it, for messages.
	Raw string
	// Offset is the byte offset of the entry's first header block in the
	// uncompressed stream: that of its PAX or GNU extended header when it
	// has one, since that is where the entry starts.
	Offset int64
}

// Limits from SPEC "Tar input rules": ext4's EXT4_NAME_LEN, and Linux's
// PATH_MAX less the terminating NUL for a symlink's target.
const (
	MaxNameComponent = 255
	MaxSymlinkTarget = 4095
)

// Option configures a Reader.
type Option func(*options) error

type options struct {
	warn   func(string)
	digest hash.Hash
}

// defaults is the one place defaults are set.
func defaults() options { return options{warn: func(string) {}} }

// WithWarn sets where warnings go: applied whiteouts, data after the
// end-of-archive marker. Each is one line without a trailing newline.
// Default: dropped.
func WithWarn(f func(msg string)) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("tarflat: nil warn function")
		}
		o.warn = f
		return nil
	}
}

// WithDigest has every byte of the uncompressed tar stream written to h,
// so that the caller can check an image layer against its diff_id once
// Next has returned io.EOF. A stream that goes on for more than 64 MiB
// after its end-of-archive marker cannot be hashed whole, and is then an
// error. Default: none.
func WithDigest(h hash.Hash) Option {
	return func(o *options) error {
		if h == nil {
			return errors.New("tarflat: nil digest hash")
		}
		o.digest = h
		return nil
	}
}

// Reader reads normalised entries from a tar stream.
type Reader struct {
	in    io.Reader
	opt   options
	s     *tarStream
	codec string // "", "gzip" or "zstd"
	close func()
	// layer: the tar is an image layer (Layers.Add), whose whiteouts
	// act on the layers below it, rather than a flat rootfs tar.
	layer bool

	started bool
	cur     *tar.Header // the entry whose data Read reads
	curAt   int64       // its offset
	prev    string      // the previous entry's raw name, for messages
	prevAt  int64       // and its offset
	done    bool        // io.EOF was returned
	newest  time.Time   // the newest mtime of any header read

	// err is sticky: once the stream is broken (or an option was bad),
	// every Next and Read returns it. Errors about one entry's content
	// (a bad name, say) are not sticky: the stream is still in step.
	err error
}

// NewReader returns a Reader for r, which may hold a plain, gzip or zstd
// tar, recognised by its magic bytes on the first Next, or be a tar
// stream Prefetch decompresses ahead. Like
// archive/tar.NewReader it returns no error: a bad option, and anything
// wrong with the input, is reported by Next.
func NewReader(r io.Reader, opts ...Option) *Reader {
	o := defaults()
	var errs []error
	for _, opt := range opts {
		errs = append(errs, opt(&o))
	}
	rd := &Reader{in: r, opt: o, close: func() {}, err: errors.Join(errs...)}
	if p, ok := r.(*Prefetched); ok {
		// Stopped by Close even if it is never read.
		rd.close = func() { p.Close() }
	}
	return rd
}

// Close releases the decompressor. It does not close the input.
func (r *Reader) Close() error {
	r.close()
	r.close = func() {}
	return nil
}

// BytesRead is the number of uncompressed bytes read so far.
func (r *Reader) BytesRead() int64 {
	if r.s == nil {
		return 0
	}
	return r.s.n
}

// Newest is the newest mtime of every header read so far: entries,
// hardlinks, whiteouts and dropped entries alike. It is SPEC's "newest
// mtime in the tar", the time of the entries ext4pack makes itself.
func (r *Reader) Newest() time.Time { return r.newest }

// Compression names the input's compression: "", "gzip" or "zstd". It is
// known after the first Next.
func (r *Reader) Compression() string { return r.codec }

func (r *Reader) warn(format string, args ...any) { r.opt.warn(fmt.Sprintf(format, args...)) }

func (r *Reader) start() error {
	r.started = true
	var src io.Reader
	var codec string
	var closeFn func()
	var err error
	if p, ok := r.in.(*Prefetched); ok {
		src, codec, closeFn, err = p.open()
	} else {
		src, codec, closeFn, err = openStream(r.in)
		if err == nil && codec == "gzip" && inflateAhead {
			// Inflating is most of the work on a gzip tar: it gets a
			// goroutine (a core) of its own.
			p := decodeAhead(src, codec, closeFn)
			src, closeFn = p, func() { p.Close() }
		}
	}
	if err != nil {
		var re *readError
		if errors.As(err, &re) {
			return re
		}
		var de *decodeError
		if errors.As(err, &de) {
			return badInput("%w", de)
		}
		return err
	}
	r.codec, r.close = codec, closeFn
	if r.opt.digest != nil {
		src = io.TeeReader(src, r.opt.digest)
	}
	br, ok := src.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(src, 256<<10)
	}
	r.s = &tarStream{br: br}
	return nil
}

// Read reads the current entry's data: Size bytes for a regular file,
// holes of a sparse member read as zeros.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.cur == nil {
		return 0, io.EOF
	}
	n, err := r.s.Read(p)
	if err != nil && err != io.EOF {
		return n, r.dataErr(err)
	}
	return n, err
}

// dataErr records err, met reading the current entry's data.
func (r *Reader) dataErr(err error) error {
	r.err = &EntryError{Name: r.cur.Name, Offset: r.curAt, Err: streamErr(err, "the entry's data")}
	return r.err
}

// Next returns the next entry, or io.EOF after the last one. Any data of
// the current entry that was not read is skipped.
func (r *Reader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.started {
		if err := r.start(); err != nil {
			r.err = err
			return nil, err
		}
	}
	if r.done {
		return nil, io.EOF
	}
	for {
		if r.cur != nil {
			if err := r.s.skip(); err != nil {
				return nil, r.dataErr(err)
			}
			r.prev, r.prevAt, r.cur = r.cur.Name, r.curAt, nil
		}
		h, err := r.s.next()
		at := r.s.start
		if err == io.EOF {
			if err := r.end(at); err != nil {
				r.err = err
				return nil, err
			}
			r.done = true
			return nil, io.EOF
		}
		if err != nil {
			r.err = r.headerErr(at, err)
			return nil, r.err
		}
		r.cur, r.curAt = h, at
		if h.ModTime.After(r.newest) {
			r.newest = h.ModTime
		}
		e, skip, err := r.convert(h)
		if err != nil {
			return nil, &EntryError{Name: h.Name, Offset: at, Err: err}
		}
		if skip {
			continue
		}
		e.Offset = at
		return e, nil
	}
}

// headerErr explains an error met reading the headers of the entry at
// offset at.
func (r *Reader) headerErr(at int64, err error) error {
	after := ""
	if r.prev != "" {
		after = fmt.Sprintf(" (the entry before it is %q)", r.prev)
	}
	var he *headerError
	var nh *notHeaderError
	switch {
	case errors.As(err, &he):
		return &EntryError{Name: he.name, Offset: at, Err: he.err}
	case errors.As(err, &nh) && at == 0:
		inside := ""
		if r.codec != "" {
			inside = " (the " + r.codec + " stream decompresses, but not to a tar)"
		}
		return &EntryError{Offset: at, Err: badInput("not a tar archive%s: %s", inside, nh.problem)}
	case errors.As(err, &nh):
		return &EntryError{Offset: at, Err: badInput("%s%s", nh.problem, after)}
	case at == 0 && r.s.n < blockSize && err == io.ErrUnexpectedEOF:
		return &EntryError{Offset: at, Err: badInput("not a tar archive: the input is %d bytes, less than one 512-byte tar header", r.s.n)}
	}
	return &EntryError{Offset: at, Err: streamErr(err, "a header"+after)}
}

// end checks the end of the archive, which began at offset at, and reads
// whatever follows it.
func (r *Reader) end(at int64) error {
	if r.s.n <= at {
		// The input simply stops between entries (or in the last entry's
		// padding), as a tar cut short there would. Not a zero block was
		// read.
		if at == 0 {
			return badInput("the input is empty")
		}
		after := ""
		if r.prev != "" {
			after = fmt.Sprintf(", after entry %q,", r.prev)
		}
		return badInput("the input ends at byte %d%s without tar's end-of-archive marker (truncated?)", r.s.n, after)
	}
	nonzero, total, bounded, err := drain(r.s.br)
	r.s.n += total
	if err != nil {
		var de *decodeError
		if errors.As(err, &de) && errors.Is(err, inflate.ErrTrailingData) {
			// gzip -d, too, ignores what follows the last member with a
			// warning ("trailing garbage ignored").
			r.warn("ignoring data after the end of the gzip stream")
			return nil
		}
		return streamErr(err, "the data after the end-of-archive marker")
	}
	switch {
	case bounded && r.opt.digest != nil:
		return badInput("more than %d MiB follow the tar end-of-archive marker at byte %d: too much to read for checking the stream's digest", maxTrailing>>20, at)
	case bounded:
		r.warn("ignoring what follows the tar end-of-archive marker at byte %d: %d MiB or more, not read to its end (a compressed stream's checksum is not checked)", at, maxTrailing>>20)
	case nonzero > 0:
		r.warn("ignoring what follows the tar end-of-archive marker at byte %d (%d bytes, %d of them not zero), as tar does", at, r.s.n-at, nonzero)
	}
	return nil
}
