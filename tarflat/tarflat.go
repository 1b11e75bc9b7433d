// Package tarflat reads a rootfs tar stream (plain, gzip or zstd) and
// turns it into the flat list of operations an ext4 image is built from:
// names cleaned, whiteouts applied, PAX xattrs decoded, every entry type
// checked. Reader has archive/tar's shape: Next returns one entry at a
// time and io.EOF at the end, and the Reader reads the current entry's
// data.
package tarflat

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ext4pack/ext4pack/ext4w"
)

// Op is what an Entry asks of the image.
type Op uint8

// The operations an entry becomes.
const (
	OpCreate Op = iota + 1 // create or replace Name as File describes
	OpLink                 // make Name another name of Target
	OpRemove               // remove Name (a whiteout)
)

// Entry is one normalised tar entry.
type Entry struct {
	Op     Op
	Name   string     // cleaned: relative, no "./", no trailing "/"; "." is the root
	Target string     // OpLink: the cleaned name linked to
	File   ext4w.File // OpCreate
	// Raw is the entry's name as the tar has it, for messages.
	Raw string
	// Offset is the byte offset of the entry's header in the
	// uncompressed stream.
	Offset int64
}

// Limits from SPEC "Tar input rules".
const (
	MaxNameComponent = 255
	MaxSymlinkTarget = 4095
)

// ErrFormat is wrapped by errors about input that is not a valid tar.
var ErrFormat = errors.New("tarflat: not a valid tar stream")

// EntryError records an error and the tar entry that caused it.
type EntryError struct {
	Name   string // the entry's name as the tar has it
	Offset int64  // the byte offset of its header, -1 if unknown
	Err    error
}

func (e *EntryError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("tar entry %q (at byte %d): %v", e.Name, e.Offset, e.Err)
	}
	return fmt.Sprintf("tar entry %q: %v", e.Name, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// Reader reads normalised entries from a tar stream.
type Reader struct {
	tr    *tar.Reader
	cr    *countingReader
	close func()
	warn  func(string)
	cur   *tar.Header
	// err is sticky: after a stream error every Next returns it.
	err error
}

// NewReader returns a Reader for r, which may be a plain, gzip or zstd
// tar, recognised by its magic bytes. warn receives warnings such as
// applied whiteouts; it may be nil.
func NewReader(r io.Reader, warn func(string)) (*Reader, error) {
	if warn == nil {
		warn = func(string) {}
	}
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("tarflat: reading the input: %w", err)
	}
	var src io.Reader = br
	closeFn := func() {}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: bad gzip header: %v", ErrFormat, err)
		}
		gz.Multistream(true)
		src = gz
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%w: bad zstd stream: %v", ErrFormat, err)
		}
		src, closeFn = zr, zr.Close
	}
	cr := &countingReader{r: src}
	return &Reader{tr: tar.NewReader(cr), cr: cr, close: closeFn, warn: warn}, nil
}

// Close releases the decompressor.
func (r *Reader) Close() { r.close() }

// BytesRead is the number of uncompressed bytes read so far.
func (r *Reader) BytesRead() int64 { return r.cr.n }

// Read reads the current entry's data.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.tr.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, r.entryErr(r.cur, streamErr(err))
	}
	return n, err
}

func streamErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the input ends in the middle of an entry (truncated?)", ErrFormat)
	}
	if errors.Is(err, tar.ErrHeader) {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return err
}

func (r *Reader) entryErr(h *tar.Header, err error) error {
	name, off := "", int64(-1)
	if h != nil {
		name = h.Name
	}
	if h != nil {
		off = r.cr.headerAt
	}
	return &EntryError{Name: name, Offset: off, Err: err}
}

// Next returns the next entry, or io.EOF after the last one.
func (r *Reader) Next() (*Entry, error) {
	for {
		if r.err != nil {
			return nil, r.err
		}
		start := r.cr.n
		h, err := r.tr.Next()
		if errors.Is(err, io.EOF) {
			if r.cr.n == 0 {
				r.err = fmt.Errorf("%w: the input is empty", ErrFormat)
				return nil, r.err
			}
			return nil, io.EOF
		}
		if err != nil {
			r.err = fmt.Errorf("after byte %d: %w", start, streamErr(err))
			return nil, r.err
		}
		r.cur = h
		r.cr.headerAt = start
		e, skip, err := r.convert(h)
		if err != nil {
			return nil, r.entryErr(h, err)
		}
		if skip {
			continue
		}
		e.Offset = start
		return e, nil
	}
}

// Clean applies SPEC's name rules: a leading "./" or "/" and a trailing
// "/" go; "." is the root; a name that still climbs out of the root once
// cleaned ("../x", "a/../../x") is an error.
func Clean(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", errors.New("the name holds a NUL byte")
	}
	for _, c := range strings.Split(name, "/") {
		if len(c) > MaxNameComponent {
			return "", fmt.Errorf("a name component is %d bytes, the limit is %d", len(c), MaxNameComponent)
		}
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errors.New(`the name climbs out of the root with ".."`)
	}
	return p, nil
}

const whiteoutPrefix = ".wh."

func (r *Reader) convert(h *tar.Header) (e *Entry, skip bool, err error) {
	name, err := Clean(h.Name)
	if err != nil {
		return nil, false, err
	}
	e = &Entry{Name: name, Raw: h.Name}
	base := path.Base(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		if base == ".wh..wh..opq" {
			r.warn(fmt.Sprintf("tar entry %q: opaque whiteout dropped (a flat tar has no lower layer)", h.Name))
			return nil, true, nil
		}
		target := path.Join(path.Dir(name), strings.TrimPrefix(base, whiteoutPrefix))
		r.warn(fmt.Sprintf("tar entry %q: whiteout removes %q", h.Name, target))
		e.Op, e.Name = OpRemove, target
		return e, false, nil
	}
	f := &e.File
	// Old tars repeat the file type in the mode's high bits: keep only
	// the permission bits, setuid, setgid and sticky.
	f.Mode = uint32(h.Mode) & 0o7777
	if h.Uid < 0 || h.Gid < 0 || int64(uint32(h.Uid)) != int64(h.Uid) || int64(uint32(h.Gid)) != int64(h.Gid) {
		return nil, false, fmt.Errorf("uid %d or gid %d is out of the 32-bit range", h.Uid, h.Gid)
	}
	f.Uid, f.Gid = uint32(h.Uid), uint32(h.Gid)
	f.Mtime = h.ModTime
	f.Atime = h.AccessTime
	f.Ctime = h.ChangeTime
	if h.Format != tar.FormatPAX && h.Format != tar.FormatGNU {
		// Only PAX and GNU carry atime and ctime; elsewhere the zero
		// fields would read as 1970.
		f.Atime, f.Ctime = time.Time{}, time.Time{}
	}
	if f.Xattrs, err = xattrs(h); err != nil {
		return nil, false, err
	}
	e.Op = OpCreate
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		f.Type, f.Size = ext4w.TypeRegular, h.Size
		if h.Size < 0 {
			return nil, false, fmt.Errorf("negative size %d", h.Size)
		}
	case tar.TypeDir:
		f.Type = ext4w.TypeDir
	case tar.TypeSymlink:
		f.Type, f.Linkname = ext4w.TypeSymlink, h.Linkname
		if h.Linkname == "" {
			return nil, false, errors.New("symlink with an empty target")
		}
		if len(h.Linkname) > MaxSymlinkTarget {
			return nil, false, fmt.Errorf("symlink target is %d bytes, the limit is %d", len(h.Linkname), MaxSymlinkTarget)
		}
	case tar.TypeLink:
		target, err := Clean(h.Linkname)
		if err != nil {
			return nil, false, fmt.Errorf("hardlink target %q: %v", h.Linkname, err)
		}
		if target == "." {
			return nil, false, errors.New("hardlink to the root directory")
		}
		e.Op, e.Target = OpLink, target
	case tar.TypeChar, tar.TypeBlock:
		f.Type = ext4w.TypeCharDev
		if h.Typeflag == tar.TypeBlock {
			f.Type = ext4w.TypeBlockDev
		}
		if h.Devmajor < 0 || h.Devminor < 0 || h.Devmajor > 1<<12-1 || h.Devminor > 1<<20-1 {
			return nil, false, fmt.Errorf("device %d:%d is beyond what ext4 holds (major < 4096, minor < 2^20)", h.Devmajor, h.Devminor)
		}
		f.Devmajor, f.Devminor = uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeFifo:
		f.Type = ext4w.TypeFifo
	case tar.TypeXGlobalHeader:
		return nil, true, nil
	default:
		return nil, false, fmt.Errorf("unsupported entry type %q", h.Typeflag)
	}
	if e.Name == "." && f.Type != ext4w.TypeDir && e.Op == OpCreate {
		return nil, false, fmt.Errorf("the root must be a directory, not a %v", f.Type)
	}
	return e, false, nil
}

// xattrs decodes PAX xattr records: SCHILY.xattr.NAME holds the raw value,
// LIBARCHIVE.xattr.NAME a base64 value under a URL-encoded name.
func xattrs(h *tar.Header) (map[string][]byte, error) {
	var out map[string][]byte
	set := func(k string, v []byte) {
		if out == nil {
			out = map[string][]byte{}
		}
		out[k] = v
	}
	for k, v := range h.PAXRecords {
		switch {
		case strings.HasPrefix(k, "SCHILY.xattr."):
			set(strings.TrimPrefix(k, "SCHILY.xattr."), []byte(v))
		case strings.HasPrefix(k, "LIBARCHIVE.xattr."):
			name, err := unescapeURL(strings.TrimPrefix(k, "LIBARCHIVE.xattr."))
			if err != nil {
				return nil, fmt.Errorf("PAX record %q: %v", k, err)
			}
			val, err := base64.StdEncoding.WithPadding(base64.NoPadding).DecodeString(strings.TrimRight(v, "="))
			if err != nil {
				return nil, fmt.Errorf("PAX record %q: the value is not base64: %v", k, err)
			}
			set(name, val)
		}
	}
	// GNU tar writes ACLs twice: as text that names users by name, and as
	// the binary xattr. The binary one wins; the text (star writes ids in
	// it) is used only when it is alone.
	for _, kind := range []string{"access", "default"} {
		text, ok := h.PAXRecords["SCHILY.acl."+kind]
		name := "system.posix_acl_" + kind
		if _, have := out[name]; !ok || have {
			continue
		}
		es, err := parseACLText(text)
		if err != nil {
			return nil, fmt.Errorf("PAX record %q: %v", "SCHILY.acl."+kind, err)
		}
		if len(es) > 3 || kind == "default" {
			// An access ACL of just owner, group and other is the mode
			// itself; the kernel stores none for it, and neither do we.
			set(name, ext4w.EncodeACLXattr(es))
		}
	}
	return out, nil
}

// unescapeURL undoes libarchive's %XX escaping of xattr names.
func unescapeURL(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		var v byte
		for _, c := range []byte(s[i+1 : i+3]) {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= c - '0'
			case c >= 'a' && c <= 'f':
				v |= c - 'a' + 10
			case c >= 'A' && c <= 'F':
				v |= c - 'A' + 10
			default:
				return "", fmt.Errorf("bad escape in %q", s)
			}
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), nil
}

type countingReader struct {
	r        io.Reader
	n        int64
	headerAt int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
