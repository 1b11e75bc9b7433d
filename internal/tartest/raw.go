package tartest

import (
	"fmt"
	"strconv"
)

// BlockSize is tar's block: every header is one, and data is padded to a
// whole number of them.
const BlockSize = 512

// Raw is a tar header built byte by byte, for what archive/tar's Writer
// will not write: v7 headers, GNU volume labels, the members of PAX
// sparse files, sizes that disagree with the data, headers to patch.
// Uid and gid are 0, uname and gname empty.
type Raw struct {
	Name         string // at most 100 bytes
	Typeflag     byte
	Size         int64
	Mode         int64 // 0 is written 0644
	Linkname     string
	Major, Minor int64  // not written in a v7 header
	Mtime        int64  // seconds since the epoch
	Magic        string // "ustar" (POSIX, the default), "gnu" or "v7" (none)
}

// Block returns the header's 512 bytes, checksum included. A name, link
// or number that does not fit its field panics: a test asking for one
// needs an extended header.
func (h Raw) Block() []byte {
	b := make([]byte, BlockSize)
	str := func(off, width int, s string) {
		if len(s) > width {
			panic(fmt.Sprintf("tartest: %q does not fit a %d-byte field", s, width))
		}
		copy(b[off:off+width], s)
	}
	octal := func(off, width int, v int64) {
		s := fmt.Sprintf("%0*o", width-1, v)
		if len(s) > width-1 {
			panic(fmt.Sprintf("tartest: %d does not fit a %d-byte field in %q", v, width, h.Name))
		}
		copy(b[off:off+width], s+"\x00")
	}
	str(0, 100, h.Name)
	mode := h.Mode
	if mode == 0 {
		mode = 0o644
	}
	octal(100, 8, mode)
	octal(108, 8, 0)
	octal(116, 8, 0)
	octal(124, 12, h.Size)
	octal(136, 12, h.Mtime)
	b[156] = h.Typeflag
	str(157, 100, h.Linkname)
	switch h.Magic {
	case "", "ustar":
		copy(b[257:], "ustar\x0000")
	case "gnu":
		copy(b[257:], "ustar  \x00")
	case "v7":
	default:
		panic("tartest: unknown magic " + strconv.Quote(h.Magic))
	}
	if h.Magic != "v7" {
		octal(329, 8, h.Major)
		octal(337, 8, h.Minor)
	}
	SetChecksum(b)
	return b
}

// SetChecksum writes the checksum of the header block b: the sum of its
// bytes, the checksum field itself counted as spaces.
func SetChecksum(b []byte) {
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// Pad returns data, a string or bytes, followed by zeros to a whole
// number of blocks.
func Pad[D ~string | ~[]byte](data D) []byte {
	n := (len(data) + BlockSize - 1) / BlockSize * BlockSize
	return append([]byte(data), make([]byte, n-len(data))...)
}

// PAXRecords encodes PAX records, given as key, value, key, value..., in
// that order: "LEN KEY=VALUE\n", where LEN counts itself.
func PAXRecords(kv ...string) []byte {
	if len(kv)%2 != 0 {
		panic("tartest: PAXRecords takes key, value pairs")
	}
	var out []byte
	for i := 0; i < len(kv); i += 2 {
		rec := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		out = append(out, strconv.Itoa(n)+rec...)
	}
	return out
}

// RawPAX is a PAX extended header, typeflag 'x' for the entry that
// follows or 'g' for the whole archive, carrying the records kv, as
// blocks. It writes what Entry.PAX cannot: GNU.sparse.* and the records
// archive/tar derives from the header (path, linkpath, uid, size, ...).
func RawPAX(typeflag byte, kv ...string) []byte {
	recs := PAXRecords(kv...)
	h := Raw{Name: "PaxHeaders/x", Typeflag: typeflag, Size: int64(len(recs))}
	return append(h.Block(), Pad(recs)...)
}

// End is tar's end-of-archive marker: two zero blocks.
func End() []byte { return make([]byte, 2*BlockSize) }
