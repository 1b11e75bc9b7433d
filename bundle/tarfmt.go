package bundle

import (
	"fmt"
	"strconv"
	"time"
)

// The tar records written here follow POSIX.1-2001 (the pax interchange
// format: a ustar header, optionally preceded by a typeflag 'x' extended
// header of "LEN key=value\n" records) and GNU tar's sparse format 1.0,
// described in the GNU tar manual, "Storing Sparse Files" (appendix on the
// sparse formats). archive/tar cannot write the GNU.sparse records (its
// Writer drops them), so the headers are built here.

// tarBlockSize is the tar record unit: every header is one block, and member
// data is padded with NULs to a whole block.
const tarBlockSize = 512

// Offsets and widths of the ustar header fields (POSIX.1-2001, pax,
// "ustar Interchange Format").
const (
	ustarName     = 0   // name[100]
	ustarMode     = 100 // mode[8], octal
	ustarUID      = 108 // uid[8], octal
	ustarGID      = 116 // gid[8], octal
	ustarSize     = 124 // size[12], octal
	ustarMtime    = 136 // mtime[12], octal
	ustarChksum   = 148 // chksum[8]
	ustarTypeflag = 156 // typeflag[1]
	ustarMagic    = 257 // magic[6] "ustar\x00"
	ustarVersion  = 263 // version[2] "00"
	ustarUname    = 265 // uname[32]
	ustarGname    = 297 // gname[32]
	ustarDevmajor = 329 // devmajor[8], octal
	ustarDevminor = 337 // devminor[8], octal

	ustarNameLen  = 100
	ustarUnameLen = 32
)

// Typeflags written by this package.
const (
	typeReg     = '0' // regular file
	typePAXHead = 'x' // pax extended header for the next member
)

// maxUstarOctal11 is the largest value an 11-digit octal field holds:
// 8 GiB - 1 for size, and the year 2242 for mtime. A larger size is written
// in base-256 (putNumeric11); a larger mtime goes into a pax record.
const maxUstarOctal11 = 1<<33 - 1

// ManifestName and RootfsName are the names of a bundle's two members, in
// the order they come.
const (
	ManifestName = "manifest.json"
	RootfsName   = "rootfs.ext4"
)

// sparseHeaderName is what GNU tar writes as the ustar name of a sparse
// member ("%d/GNUSparseFile.%p/%f", with the process ID pinned to 0 so that
// the output is reproducible); a reader that knows the format takes the real
// name from GNU.sparse.name instead. paxHeaderName follows GNU tar's
// "%d/PaxHeaders/%f".
func sparseHeaderName(name string) string { return "./GNUSparseFile.0/" + name }
func paxHeaderName(name string) string    { return "./PaxHeaders/" + name }

// owner is the user and group name of every member; uid and gid are 0.
const owner = "root"

// tarHeader is one ustar header. An mtime that does not fit its octal
// field must also be given as a pax record by the caller; a size that does
// not is written in base-256 only (see newTarStream).
type tarHeader struct {
	name     string
	typeflag byte
	mode     int64
	size     int64
	mtime    int64
	uname    string
	gname    string
}

// appendTo appends h as one 512-byte block.
func (h *tarHeader) appendTo(dst []byte) ([]byte, error) {
	if len(h.name) > ustarNameLen {
		return dst, fmt.Errorf("bundle: tar name %q is longer than %d bytes", h.name, ustarNameLen)
	}
	if len(h.uname) > ustarUnameLen || len(h.gname) > ustarUnameLen {
		return dst, fmt.Errorf("bundle: tar owner of %q is longer than %d bytes", h.name, ustarUnameLen)
	}
	var b [tarBlockSize]byte
	copy(b[ustarName:], h.name)
	putOctal(b[ustarMode:ustarMode+8], h.mode)
	putOctal(b[ustarUID:ustarUID+8], 0)
	putOctal(b[ustarGID:ustarGID+8], 0)
	putNumeric11(b[ustarSize:ustarSize+12], h.size)
	putNumeric11(b[ustarMtime:ustarMtime+12], h.mtime)
	b[ustarTypeflag] = h.typeflag
	copy(b[ustarMagic:], "ustar\x00")
	copy(b[ustarVersion:], "00")
	copy(b[ustarUname:], h.uname)
	copy(b[ustarGname:], h.gname)
	putOctal(b[ustarDevmajor:ustarDevmajor+8], 0)
	putOctal(b[ustarDevminor:ustarDevminor+8], 0)

	// The checksum is the sum of the header's bytes with the checksum
	// field itself counted as eight spaces, written as six octal digits,
	// a NUL and a space, as GNU tar and archive/tar write it.
	copy(b[ustarChksum:ustarChksum+8], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	putOctal(b[ustarChksum:ustarChksum+7], sum)
	b[ustarChksum+7] = ' '
	return append(dst, b[:]...), nil
}

// putNumeric11 writes v into a 12-byte size or mtime field: as octal when
// it fits, else in the base-256 form GNU tar and libarchive write (a 0x80
// marker byte, then the value big-endian), which GNU tar, bsdtar, Go's
// archive/tar and Python's tarfile read in any header. For an mtime a pax
// record follows, which pax readers take instead; a size has none (see
// newTarStream).
func putNumeric11(field []byte, v int64) {
	if 0 <= v && v <= maxUstarOctal11 {
		putOctal(field, v)
		return
	}
	for i := len(field) - 1; i > 0; i-- {
		field[i] = byte(v)
		v >>= 8
	}
	field[0] = 0x80
}

// putOctal writes v as zero-padded octal digits followed by a NUL, filling
// the field. v must fit.
func putOctal(field []byte, v int64) {
	s := strconv.FormatInt(v, 8)
	n := len(field) - 1
	if len(s) > n {
		panic(fmt.Sprintf("bundle: octal %s does not fit a %d-byte field", s, len(field)))
	}
	for i := 0; i < n-len(s); i++ {
		field[i] = '0'
	}
	copy(field[n-len(s):], s)
	field[n] = 0
}

// appendPAXRecord appends one pax extended header record, "LEN key=value\n",
// where LEN is the decimal length of the whole record, LEN included.
func appendPAXRecord(dst []byte, key, value string) []byte {
	n := len(key) + len(value) + len(" =\n")
	digits := len(strconv.Itoa(n))
	if len(strconv.Itoa(n+digits)) > digits {
		digits++
	}
	dst = strconv.AppendInt(dst, int64(n+digits), 10)
	dst = append(dst, ' ')
	dst = append(dst, key...)
	dst = append(dst, '=')
	dst = append(dst, value...)
	return append(dst, '\n')
}

// paxTime formats t as a pax time: seconds, then a fraction without
// trailing zeros when t has one. t is never before 1970 (WithModTime).
func paxTime(t time.Time) string {
	s := strconv.FormatInt(t.Unix(), 10)
	if ns := t.Nanosecond(); ns != 0 {
		frac := fmt.Sprintf("%09d", ns)
		for frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
		s += "." + frac
	}
	return s
}

// needsPAXTime reports whether t does not fit the ustar mtime field exactly.
func needsPAXTime(t time.Time) bool {
	return t.Nanosecond() != 0 || t.Unix() > maxUstarOctal11
}

// padBlock returns how many NULs follow n bytes of member data.
func padBlock(n int64) int64 {
	return -n & (tarBlockSize - 1)
}

// appendMember appends the headers of one regular member: a pax extended
// header when records is not empty, then the ustar header. realName is the
// member's name; for a sparse member ustarName differs from it.
func appendMember(dst []byte, realName, ustarName string, size int64, mtime time.Time, records []byte) ([]byte, error) {
	var err error
	if len(records) > 0 {
		xh := tarHeader{
			name:     paxHeaderName(realName),
			typeflag: typePAXHead,
			mode:     0o644,
			size:     int64(len(records)),
			mtime:    mtime.Unix(),
		}
		if dst, err = xh.appendTo(dst); err != nil {
			return dst, err
		}
		dst = append(dst, records...)
		dst = append(dst, make([]byte, padBlock(int64(len(records))))...)
	}
	h := tarHeader{
		name:     ustarName,
		typeflag: typeReg,
		mode:     0o644,
		size:     size,
		mtime:    mtime.Unix(),
		uname:    owner,
		gname:    owner,
	}
	return h.appendTo(dst)
}

// appendSparseMap appends the GNU sparse 1.0 map that starts a sparse
// member's data: the number of entries, then offset and length of each, all
// decimal and one per line, padded with NULs to a whole block. As GNU tar
// does, the map ends with an empty entry at the file's size, so that the
// size is restored even when the file ends in a hole.
func appendSparseMap(dst []byte, ext []extent, size int64) []byte {
	start := len(dst)
	dst = strconv.AppendInt(dst, int64(len(ext)+1), 10)
	dst = append(dst, '\n')
	for _, e := range ext {
		dst = strconv.AppendInt(dst, e.off, 10)
		dst = append(dst, '\n')
		dst = strconv.AppendInt(dst, e.len, 10)
		dst = append(dst, '\n')
	}
	dst = strconv.AppendInt(dst, size, 10)
	dst = append(dst, "\n0\n"...)
	return append(dst, make([]byte, padBlock(int64(len(dst)-start)))...)
}
