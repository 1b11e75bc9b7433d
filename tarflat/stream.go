package tarflat

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits on what one entry's headers may hold. Names and PAX records of
// up to 1 MiB are far beyond any real tar and what archive/tar allows;
// a sparse map of 1 Mi fragments is 16 MiB of memory.
const (
	maxSpecial   = 1 << 20
	maxFragments = 1 << 20
)

// fragment is a run of a sparse file's data: len bytes at logical offset
// off, stored in the tar one after another. What lies between fragments
// is a hole.
type fragment struct{ off, len int64 }

// tarStream reads headers and data from an uncompressed tar stream. It
// does what archive/tar.Reader does, with two differences that matter to
// ext4pack: a sparse member's holes are reported as holes, never
// expanded to zeros, and data can be taken straight from the read buffer.
type tarStream struct {
	br *bufio.Reader
	n  int64 // bytes consumed from br
	// start is the offset of the current entry's first header block.
	start int64
	blk   [blockSize]byte
	hdr   tar.Header
	buf   []byte // a special entry's data (PAX records, long names)

	// The current entry's data, as a position in its logical content of
	// size bytes. frags is nil for a plain file: then all of it is one
	// fragment.
	size   int64
	pos    int64
	frags  []fragment
	fi     int   // the first fragment that does not end at or before pos
	stored int64 // stored bytes not yet consumed
	pad    int64 // padding after them
}

// headerError is a problem with the headers of the entry starting at
// tarStream.start. Name is the entry's name when it was read.
type headerError struct {
	name string
	err  error
}

func (e *headerError) Error() string { return e.err.Error() }
func (e *headerError) Unwrap() error { return e.err }

// notHeaderError says that the block at tarStream.start is not a tar
// header, and why.
type notHeaderError struct{ problem string }

func (e *notHeaderError) Error() string { return e.problem }

// consume advances over k bytes known to be buffered.
func (s *tarStream) consume(k int) {
	s.br.Discard(k)
	s.n += int64(k)
}

// readBlock reads one 512-byte block into s.blk. A stream that ends
// cleanly before it gives io.EOF; one that ends inside it,
// io.ErrUnexpectedEOF.
func (s *tarStream) readBlock() error {
	b, err := s.br.Peek(blockSize)
	copy(s.blk[:], b)
	s.consume(len(b))
	if len(b) == blockSize {
		return nil
	}
	if err == io.EOF && len(b) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// skip discards the rest of the current entry's stored data and its
// padding; holes cost nothing. The stream may end in the padding: tar
// writers do cut there, and the missing end-of-archive marker is
// reported next.
func (s *tarStream) skip() error {
	for s.stored > 0 {
		k, err := s.br.Discard(int(min(s.stored, 1<<30)))
		s.n += int64(k)
		s.stored -= int64(k)
		if err != nil {
			return unexpected(err)
		}
	}
	s.pos, s.size = 0, 0
	k, err := s.br.Discard(int(s.pad))
	s.n += int64(k)
	s.pad = 0
	if err != nil && err != io.EOF {
		return err
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// next reads the next entry's headers: extended headers, then the entry.
// It returns io.EOF at the end-of-archive marker, or where the stream
// simply ends between entries (s.n then says where). A PAX global header
// is returned as an entry of its own, as archive/tar does.
func (s *tarStream) next() (*tar.Header, error) {
	if err := s.skip(); err != nil {
		return nil, err
	}
	s.start = s.n
	var pax map[string]string
	var longName, longLink []byte
	extended := false
	for {
		if err := s.readBlock(); err != nil {
			if err == io.EOF && extended {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if isZeroBlock(s.blk[:]) {
			return nil, s.end(extended)
		}
		if !checksumOK(s.blk[:]) {
			return nil, &notHeaderError{headerProblem(s.blk[:])}
		}
		h := &s.hdr
		*h = tar.Header{}
		f, err := decodeHeader(s.blk[:], h)
		if err != nil {
			return nil, &headerError{err: badInput("%v", err)}
		}
		switch h.Typeflag {
		case tar.TypeXHeader, tar.TypeXGlobalHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			data, err := s.special(h)
			if err != nil {
				return nil, err
			}
			switch h.Typeflag {
			case tar.TypeXGlobalHeader:
				if extended {
					return nil, &headerError{err: badInput("a PAX global header follows an extended header, which must precede an entry")}
				}
				h.PAXRecords = map[string]string{}
				if err := parsePAX(data, h.PAXRecords); err != nil {
					return nil, &headerError{err: badInput("PAX global header: %v", err)}
				}
				return h, nil
			case tar.TypeXHeader:
				// Of several extended headers before one entry, the last
				// one counts, as in GNU tar, libarchive and archive/tar.
				pax = map[string]string{}
				if err := parsePAX(data, pax); err != nil {
					return nil, &headerError{err: badInput("PAX extended header: %v", err)}
				}
			case tar.TypeGNULongName:
				longName = append(longName[:0], cstring(data)...)
			case tar.TypeGNULongLink:
				longLink = append(longLink[:0], cstring(data)...)
			}
			extended = true
			continue
		}
		return h, s.entry(h, f, pax, longName, longLink)
	}
}

// end checks what follows a zero block: another one, or the end of the
// stream, is the end-of-archive marker (POSIX asks for two; one is
// accepted as archive/tar and GNU tar accept it).
func (s *tarStream) end(extended bool) error {
	if extended {
		return &headerError{err: badInput("an extended header is followed by the end-of-archive marker instead of its entry")}
	}
	err := s.readBlock()
	switch {
	case err == io.EOF:
		return io.EOF
	case err != nil:
		return err
	case !isZeroBlock(s.blk[:]):
		return &notHeaderError{"a zero block (the end-of-archive marker) is followed by more data"}
	}
	return io.EOF
}

// special reads the data of an extended header (PAX records, a GNU long
// name), which is at most maxSpecial bytes.
func (s *tarStream) special(h *tar.Header) ([]byte, error) {
	if h.Size < 0 || h.Size > maxSpecial {
		what := map[byte]string{
			tar.TypeXHeader:       "a PAX extended header",
			tar.TypeXGlobalHeader: "a PAX global header",
			tar.TypeGNULongName:   "a GNU long name",
			tar.TypeGNULongLink:   "a GNU long link target",
		}[h.Typeflag]
		return nil, &headerError{err: badInput("%s of %d bytes; the limit is %d", what, h.Size, maxSpecial)}
	}
	padded := (h.Size + blockSize - 1) &^ (blockSize - 1)
	if int64(cap(s.buf)) < padded {
		s.buf = make([]byte, padded)
	}
	b := s.buf[:padded]
	k, err := io.ReadFull(s.br, b)
	s.n += int64(k)
	if err != nil {
		return nil, unexpected(err)
	}
	return b[:h.Size], nil
}

// entry applies the extended headers to h and sets up the reading of its
// data.
func (s *tarStream) entry(h *tar.Header, f format, pax map[string]string, longName, longLink []byte) error {
	if pax != nil {
		if err := applyPAX(h, pax); err != nil {
			return &headerError{name: h.Name, err: badInput("%v", err)}
		}
	}
	if longName != nil {
		h.Name = string(longName)
	}
	if longLink != nil {
		h.Linkname = string(longLink)
	}
	raw := h.Size // bytes stored in the tar after the header
	if headerOnly(h.Typeflag) {
		raw = 0
	}
	if raw < 0 {
		return &headerError{name: h.Name, err: badInput("negative size %d", raw)}
	}
	s.stored, s.pad = raw, (blockSize-raw%blockSize)%blockSize
	s.size, s.pos, s.frags, s.fi = raw, 0, nil, 0
	var err error
	switch {
	case h.Typeflag == tar.TypeGNUSparse:
		err = s.oldGNUSparse(h, f)
	case pax != nil:
		err = s.paxSparse(h, pax)
	}
	if err != nil {
		return &headerError{name: h.Name, err: badInput("%v", err)}
	}
	return nil
}

// applyPAX lets PAX records override the header's fields.
func applyPAX(h *tar.Header, pax map[string]string) error {
	h.PAXRecords = pax
	for k, v := range pax {
		if v == "" {
			// POSIX: an empty value deletes the record; the header's own
			// field stands.
			continue
		}
		var err error
		switch k {
		case "path":
			h.Name = v
		case "linkpath":
			h.Linkname = v
		case "uname", "gname":
			// ext4 stores ids; the names are not used.
		case "uid", "gid", "size":
			var n int64
			n, err = strconv.ParseInt(v, 10, 64)
			switch {
			case err != nil, n < 0:
				err = errors.New("not a non-negative decimal number")
			case k == "size":
				h.Size = n
			case n != int64(int(n)):
				err = errors.New("out of range")
			case k == "uid":
				h.Uid = int(n)
			default:
				h.Gid = int(n)
			}
		case "mtime":
			h.ModTime, err = paxTime(v)
		case "atime":
			h.AccessTime, err = paxTime(v)
		case "ctime":
			h.ChangeTime, err = paxTime(v)
		}
		if err != nil {
			return fmt.Errorf("PAX record %s=%q: %v", k, v, err)
		}
	}
	return nil
}

// oldGNUSparse reads an old GNU sparse member's map (typeflag 'S'): up to
// four fragments in the header, then extension blocks of 21 while the
// "extended" flag is set.
func (s *tarStream) oldGNUSparse(h *tar.Header, f format) error {
	if f != formatGNU {
		return errors.New("a GNU sparse entry (typeflag 'S') without GNU tar's header magic")
	}
	realsize, err := number(s.blk[offGNURealsize : offGNURealsize+12])
	if err != nil {
		return errors.New("the GNU sparse header's real size is not a number")
	}
	var frags []fragment
	add := func(b []byte, n int) (bool, error) {
		for i := range n {
			e := b[i*24 : i*24+24]
			if e[0] == 0 {
				return false, nil
			}
			off, err1 := number(e[:12])
			ln, err2 := number(e[12:])
			if err1 != nil || err2 != nil {
				return false, errors.New("a GNU sparse map entry is not a number")
			}
			if len(frags) >= maxFragments {
				return false, fmt.Errorf("the sparse map has over %d fragments", maxFragments)
			}
			frags = append(frags, fragment{off, ln})
		}
		return true, nil
	}
	more, err := add(s.blk[offGNUSparse:], gnuSparseInHdr)
	if err != nil {
		return err
	}
	ext := s.blk[offGNUExtended] != 0
	for ext {
		if err := s.readBlock(); err != nil {
			return fmt.Errorf("reading a GNU sparse extension block: %w", unexpected(err))
		}
		if !more {
			return errors.New("a GNU sparse extension block follows a map that ended")
		}
		if more, err = add(s.blk[:], gnuSparseInExt); err != nil {
			return err
		}
		ext = s.blk[offGNUExtFlagExt] != 0
	}
	h.Size = realsize
	return s.setSparse(frags, realsize)
}

// paxSparse recognises GNU tar's PAX sparse dialects: 0.0 (repeated
// offset and numbytes records, gathered by parsePAX), 0.1 (a
// GNU.sparse.map record) and 1.0 (the map at the start of the data).
func (s *tarStream) paxSparse(h *tar.Header, pax map[string]string) error {
	major, minor := pax["GNU.sparse.major"], pax["GNU.sparse.minor"]
	var v1 bool
	switch {
	case major == "1" && minor == "0":
		v1 = true
	case major == "0" && (minor == "0" || minor == "1"):
	case major != "" || minor != "":
		return fmt.Errorf("GNU sparse format %s.%s is not one GNU tar writes (0.0, 0.1, 1.0)", major, minor)
	case pax["GNU.sparse.map"] == "" && pax["GNU.sparse.numblocks"] == "":
		return nil // not sparse
	}
	if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA && h.Typeflag != tar.TypeCont {
		// A contiguous file ('7') is a regular file here, and archive/tar
		// reads sparse records on it too.
		return fmt.Errorf("GNU sparse records on an entry of type %q, not a regular file", h.Typeflag)
	}
	if name := pax["GNU.sparse.name"]; name != "" {
		h.Name = name
	}
	realsize := s.stored
	for _, k := range []string{"GNU.sparse.size", "GNU.sparse.realsize"} {
		if v := pax[k]; v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("PAX record %s=%q is not a size", k, v)
			}
			realsize = n
			break
		}
	}
	var frags []fragment
	var err error
	if v1 {
		frags, err = s.sparseMap1()
	} else {
		frags, err = sparseMap0(pax)
	}
	if err != nil {
		return err
	}
	h.Size = realsize
	return s.setSparse(frags, realsize)
}

// sparseMap0 parses a 0.0 or 0.1 map: "offset,length,..." in one record.
func sparseMap0(pax map[string]string) ([]fragment, error) {
	text := pax["GNU.sparse.map"]
	var nums []string
	if text != "" {
		nums = strings.Split(text, ",")
	}
	if len(nums)%2 != 0 {
		return nil, errors.New("the GNU.sparse.map record has an odd count of numbers")
	}
	if nb := pax["GNU.sparse.numblocks"]; nb != "" {
		n, err := strconv.ParseInt(nb, 10, 64)
		if err != nil || n != int64(len(nums)/2) {
			return nil, fmt.Errorf("GNU.sparse.numblocks=%q, but the map has %d fragments", nb, len(nums)/2)
		}
	}
	if len(nums)/2 > maxFragments {
		return nil, fmt.Errorf("the sparse map has over %d fragments", maxFragments)
	}
	frags := make([]fragment, 0, len(nums)/2)
	for i := 0; i < len(nums); i += 2 {
		off, err1 := strconv.ParseInt(nums[i], 10, 64)
		ln, err2 := strconv.ParseInt(nums[i+1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("the GNU.sparse.map record holds %q, not a number", nums[i]+","+nums[i+1])
		}
		frags = append(frags, fragment{off, ln})
	}
	return frags, nil
}

// sparseMap1 reads a 1.0 map from the start of the entry's data: decimal
// numbers, one a line: the count of fragments, then offset and length of
// each, padded to a whole block.
func (s *tarStream) sparseMap1() ([]fragment, error) {
	var frags []fragment
	count, want := int64(-1), int64(0)
	var pend int64
	var digits int
	var nums int64
	for count < 0 || nums < 1+2*count {
		if s.stored < blockSize {
			return nil, errors.New("the GNU sparse 1.0 map runs past the entry's data")
		}
		if err := s.readBlock(); err != nil {
			return nil, fmt.Errorf("reading the GNU sparse 1.0 map: %w", unexpected(err))
		}
		s.stored -= blockSize
		for _, c := range s.blk[:] {
			if count >= 0 && nums == 1+2*count {
				break // the rest of the block is padding
			}
			switch {
			case c >= '0' && c <= '9':
				if pend > (1<<63-1-int64(c-'0'))/10 {
					return nil, errors.New("a number in the GNU sparse 1.0 map is over 2^63")
				}
				pend = pend*10 + int64(c-'0')
				digits++
				continue
			case c == '\n' && digits > 0:
			default:
				return nil, fmt.Errorf("the GNU sparse 1.0 map holds byte %q where a decimal number or its newline belongs", c)
			}
			switch {
			case count < 0:
				count = pend
				if count > maxFragments {
					return nil, fmt.Errorf("the sparse map has %d fragments, over the limit of %d", count, maxFragments)
				}
				frags = make([]fragment, 0, count)
			case nums%2 == 1:
				want = pend
			default:
				frags = append(frags, fragment{want, pend})
			}
			nums++
			pend, digits = 0, 0
		}
	}
	s.pad = (blockSize - s.stored%blockSize) % blockSize
	return frags, nil
}

// setSparse checks a sparse map against the file's real size and the
// data stored, and makes it the current entry's.
func (s *tarStream) setSparse(frags []fragment, size int64) error {
	if frags == nil {
		frags = []fragment{} // all hole; nil would mean not sparse
	}
	var end, sum int64
	for _, fr := range frags {
		if fr.off < 0 || fr.len < 0 || fr.off > 1<<62 || fr.len > 1<<62 {
			return fmt.Errorf("sparse map entry %d+%d is out of range", fr.off, fr.len)
		}
		if fr.off < end {
			return fmt.Errorf("sparse map entry at %d overlaps the one before it, or comes before it", fr.off)
		}
		end = fr.off + fr.len
		sum += fr.len
	}
	if end > size {
		return fmt.Errorf("the sparse map reaches byte %d, past the file's size of %d", end, size)
	}
	if sum != s.stored {
		return fmt.Errorf("the sparse map holds %d bytes of data, but the tar stores %d", sum, s.stored)
	}
	s.frags, s.size, s.pos, s.fi = frags, size, 0, 0
	s.settle()
	return nil
}

// settle moves fi past the fragments that end at or before pos, empty
// ones included.
func (s *tarStream) settle() {
	for s.fi < len(s.frags) && s.frags[s.fi].off+s.frags[s.fi].len <= s.pos {
		s.fi++
	}
}

// hole returns the length of the hole at the read position; 0 when data,
// or the end, is next.
func (s *tarStream) hole() int64 {
	if s.frags == nil {
		return 0
	}
	if s.fi == len(s.frags) {
		return s.size - s.pos
	}
	return max(0, s.frags[s.fi].off-s.pos)
}

// skipHole moves the read position over n bytes of hole.
func (s *tarStream) skipHole(n int64) {
	s.pos += n
	s.settle()
}

// dataLeft returns how many stored bytes follow the read position before
// the next hole or the end.
func (s *tarStream) dataLeft() int64 {
	if s.frags == nil {
		return s.size - s.pos
	}
	if s.fi == len(s.frags) || s.frags[s.fi].off > s.pos {
		return 0
	}
	return s.frags[s.fi].off + s.frags[s.fi].len - s.pos
}

// peek returns stored data at the read position, straight from the read
// buffer: at least one byte and at most up to the next hole. done takes
// what of it was used.
func (s *tarStream) peek() ([]byte, error) {
	left := s.dataLeft()
	if left == 0 {
		return nil, io.EOF
	}
	if s.br.Buffered() == 0 {
		if _, err := s.br.Peek(1); err != nil {
			return nil, unexpected(err)
		}
	}
	b, _ := s.br.Peek(int(min(left, int64(s.br.Buffered()))))
	return b, nil
}

// done consumes k bytes that peek returned.
func (s *tarStream) done(k int) {
	s.consume(k)
	s.stored -= int64(k)
	s.pos += int64(k)
	s.settle()
}

// Read reads the current entry's content, holes as zeros.
func (s *tarStream) Read(p []byte) (int, error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	if h := s.hole(); h > 0 {
		k := int(min(h, int64(len(p))))
		clear(p[:k])
		s.skipHole(int64(k))
		return k, nil
	}
	b, err := s.peek()
	if err != nil {
		return 0, err
	}
	k := copy(p, b)
	s.done(k)
	return k, nil
}
