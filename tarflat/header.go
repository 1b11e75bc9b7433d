package tarflat

import (
	"archive/tar"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// This file decodes one 512-byte header block. The layouts are POSIX
// ustar (pax), GNU tar's (documented in its manual, "Basic Tar Format")
// and star's; v7 is ustar's first 257 bytes. archive/tar is not used:
// its parser scans every header rune by rune and expands sparse holes to
// zeros, and ext4pack needs neither the scan nor the zeros.

// Field offsets and lengths in a header block.
const (
	offName     = 0   // 100
	offMode     = 100 // 8
	offUid      = 108 // 8
	offGid      = 116 // 8
	offSize     = 124 // 12
	offMtime    = 136 // 12
	offChksum   = 148 // 8
	offTypeflag = 156 // 1
	offLinkname = 157 // 100
	offMagic    = 257 // 6 magic, then 2 version
	offDevmajor = 329 // 8
	offDevminor = 337 // 8
	offPrefix   = 345 // 155 in ustar, 131 in star

	// GNU's use of the ustar prefix area.
	offGNUAtime      = 345 // 12
	offGNUCtime      = 357 // 12
	offGNUSparse     = 386 // 4 entries of offset(12) and length(12)
	offGNUExtended   = 482 // 1: a sparse extension block follows
	offGNURealsize   = 483 // 12
	offStarAtime     = 476 // 12
	offStarCtime     = 488 // 12
	offStarTrailer   = 508 // 4: "tar\x00"
	gnuSparseInHdr   = 4
	gnuSparseInExt   = 21  // entries in an extension block
	offGNUExtFlagExt = 504 // the extension block's own "another follows"
)

// format is the header layout a block's magic announces.
type format uint8

const (
	formatV7    format = iota // no magic: no prefix, no device fields
	formatUSTAR               // "ustar\x00": ustar and pax
	formatSTAR                // ustar's magic and star's trailer
	formatGNU                 // "ustar " " \x00"
)

// blockFormat tells the layout by the magic alone, as GNU tar, libarchive
// and archive/tar do: ustar's version field ("00") is left out by some
// writers, and the prefix and device numbers are still theirs.
func blockFormat(b []byte) format {
	switch magic := string(b[offMagic : offMagic+8]); {
	case magic[:6] == "ustar\x00":
		if string(b[offStarTrailer:offStarTrailer+4]) == "tar\x00" {
			return formatSTAR
		}
		return formatUSTAR
	case magic == "ustar  \x00":
		return formatGNU
	}
	return formatV7
}

// cstring returns b up to its first NUL.
func cstring(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

var errNumber = errors.New("not a number")

// number decodes a numeric field: octal digits, optionally led by spaces
// and ended by spaces or NULs (POSIX), or GNU's base-256, a big-endian
// two's complement number flagged by the first byte's top bit.
func number(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		return base256(b)
	}
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == 0) {
		i++
	}
	var v uint64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '7'; i++ {
		if v>>60 != 0 {
			return 0, errNumber // over 63 bits
		}
		v = v<<3 | uint64(b[i]-'0')
	}
	// Then spaces, up to the end or a NUL; what follows a NUL is not
	// read (GNU tar and archive/tar stop there too).
	for ; i < len(b) && b[i] != 0; i++ {
		if b[i] != ' ' {
			return 0, errNumber
		}
	}
	if v > 1<<63-1 {
		return 0, errNumber
	}
	return int64(v), nil
}

func base256(b []byte) (int64, error) {
	neg := b[0]&0x40 != 0
	var v uint64
	for i, c := range b {
		if neg {
			c = ^c
		}
		if i == 0 {
			c &= 0x7f
		}
		if v>>55 != 0 {
			return 0, errNumber
		}
		v = v<<8 | uint64(c)
	}
	if v > 1<<63-1 {
		return 0, errNumber
	}
	if neg {
		return -int64(v) - 1, nil
	}
	return int64(v), nil
}

// checksumOK reports whether b's checksum field matches its bytes.
func checksumOK(b []byte) bool {
	want, unsigned, signed, err := checksum(b)
	return err == nil && (want == unsigned || want == signed)
}

// checksum returns b's checksum field and the sum of its bytes with the
// field itself counted as spaces, unsigned as POSIX says and signed as
// some old tars computed it. The signed sum is only worked out when the
// unsigned one does not match: it is the rare case, and summing every
// header twice showed in profiles.
func checksum(b []byte) (want, unsigned, signed int64, err error) {
	want, err = number(b[offChksum : offChksum+8])
	if err != nil {
		return 0, 0, 0, err
	}
	b = b[:blockSize]
	var sum uint64
	for i := 0; i < blockSize; i += 8 {
		// Eight bytes at a time, into four 16-bit lanes: a lane gets
		// two bytes a word, 128 of at most 255 in all, which fits.
		v := binary.LittleEndian.Uint64(b[i:])
		sum += v & 0x00ff00ff00ff00ff
		sum += v >> 8 & 0x00ff00ff00ff00ff
	}
	lanes := sum&0xffff + sum>>16&0xffff + sum>>32&0xffff + sum>>48
	unsigned = int64(lanes) + 8*' '
	for _, c := range b[offChksum : offChksum+8] {
		unsigned -= int64(c)
	}
	signed = unsigned
	if want != unsigned {
		for i, c := range b {
			if c >= 0x80 && (i < offChksum || i >= offChksum+8) {
				signed -= 256
			}
		}
	}
	return want, unsigned, signed, nil
}

func isZeroBlock(b []byte) bool {
	for _, c := range b[:blockSize] {
		if c != 0 {
			return false
		}
	}
	return true
}

// headerOnly reports whether a typeflag's entry carries no data whatever
// its size field says, as GNU tar and archive/tar read them.
func headerOnly(flag byte) bool {
	switch flag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return true
	}
	return false
}

// decodeHeader fills h from block b, whose checksum was verified, and
// returns its layout.
func decodeHeader(b []byte, h *tar.Header) (format, error) {
	f := blockFormat(b)
	h.Typeflag = b[offTypeflag]
	var prefix []byte
	switch f {
	case formatUSTAR:
		prefix = cstring(b[offPrefix : offPrefix+155])
	case formatSTAR:
		prefix = cstring(b[offPrefix : offPrefix+131])
	}
	if l := cstring(b[offLinkname : offLinkname+100]); len(l) > 0 {
		h.Linkname = string(l)
	}
	fields := [...]struct {
		what string
		off  int
		len  int
	}{{"mode", offMode, 8}, {"uid", offUid, 8}, {"gid", offGid, 8}, {"size", offSize, 12}, {"mtime", offMtime, 12}}
	var v [len(fields)]int64
	for i, fd := range fields {
		n, err := number(b[fd.off : fd.off+fd.len])
		if err != nil {
			return f, fmt.Errorf("corrupt tar header: its %s field %q is not a number", fd.what, cstring(b[fd.off:fd.off+fd.len]))
		}
		v[i] = n
	}
	h.Mode = v[0]
	if v[1] != int64(int(v[1])) || v[2] != int64(int(v[2])) {
		return f, errors.New("corrupt tar header: uid or gid out of range")
	}
	h.Uid, h.Gid, h.Size = int(v[1]), int(v[2]), v[3]
	h.ModTime = time.Unix(v[4], 0)
	if f != formatV7 && (h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock) {
		maj, err1 := number(b[offDevmajor : offDevmajor+8])
		min, err2 := number(b[offDevminor : offDevminor+8])
		if err1 != nil || err2 != nil {
			return f, errors.New("corrupt tar header: its device number fields are not numbers")
		}
		h.Devmajor, h.Devminor = maj, min
	}
	// GNU and star keep access and change times where ustar has its
	// prefix; zero means "not recorded".
	var atime, ctime []byte
	switch f {
	case formatGNU:
		atime, ctime = b[offGNUAtime:offGNUAtime+12], b[offGNUCtime:offGNUCtime+12]
	case formatSTAR:
		atime, ctime = b[offStarAtime:offStarAtime+12], b[offStarCtime:offStarCtime+12]
	}
	for _, t := range []struct {
		field []byte
		dst   *time.Time
	}{{atime, &h.AccessTime}, {ctime, &h.ChangeTime}} {
		if t.field == nil || len(cstring(t.field)) == 0 {
			continue
		}
		sec, err := number(t.field)
		if err != nil && f == formatGNU && h.Typeflag != tar.TypeGNUSparse {
			// Before Go 1.8, archive/tar wrote a ustar prefix under GNU's
			// magic, where GNU keeps these times: read such a header as
			// archive/tar still does, with the prefix as a prefix.
			h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
			if p := cstring(b[offPrefix : offPrefix+155]); ascii(p) {
				prefix = p
			}
			break
		}
		if err != nil {
			return f, errors.New("corrupt tar header: its access or change time is not a number")
		}
		if sec != 0 {
			*t.dst = time.Unix(sec, 0)
		}
	}
	name := cstring(b[offName : offName+100])
	if len(prefix) > 0 {
		name = append(append(append(make([]byte, 0, len(prefix)+1+len(name)), prefix...), '/'), name...)
	}
	h.Name = string(name)
	return f, nil
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// parsePAX parses the records of a PAX extended header: "LEN KEY=VALUE\n"
// each, LEN counting the whole record. GNU sparse 0.0 repeats its
// GNU.sparse.offset and GNU.sparse.numbytes records, in order; they are
// gathered into one GNU.sparse.map value, as 0.1 writes it.
func parsePAX(data []byte, into map[string]string) error {
	var sparse0 []byte
	n0 := 0
	for len(data) > 0 {
		sp := 0
		for sp < len(data) && data[sp] >= '0' && data[sp] <= '9' {
			sp++
		}
		if sp == 0 || sp >= len(data) || data[sp] != ' ' {
			return errors.New("a PAX record does not start with its length")
		}
		n, err := strconv.Atoi(string(data[:sp]))
		if err != nil || n <= sp+1 || n > len(data) {
			return fmt.Errorf("a PAX record's length %q does not fit the header", data[:sp])
		}
		rec := data[sp+1 : n]
		data = data[n:]
		if rec[len(rec)-1] != '\n' {
			return errors.New("a PAX record does not end in a newline")
		}
		rec = rec[:len(rec)-1]
		eq := -1
		for i, c := range rec {
			if c == '=' {
				eq = i
				break
			}
		}
		if eq <= 0 {
			return fmt.Errorf("a PAX record %q has no KEY=VALUE", rec)
		}
		k, v := string(rec[:eq]), string(rec[eq+1:])
		for _, c := range rec[:eq] {
			if c == 0 {
				return fmt.Errorf("a PAX record's key %q holds a NUL byte", k)
			}
		}
		if k == "GNU.sparse.offset" || k == "GNU.sparse.numbytes" {
			// They alternate, offset first.
			if (k == "GNU.sparse.offset") != (n0%2 == 0) {
				return errors.New("the GNU sparse 0.0 records GNU.sparse.offset and GNU.sparse.numbytes do not alternate")
			}
			if !decimal(v) {
				return fmt.Errorf("PAX record %s=%q is not a decimal number", k, v)
			}
			if n0 > 0 {
				sparse0 = append(sparse0, ',')
			}
			sparse0 = append(sparse0, v...)
			n0++
			continue
		}
		into[k] = v
	}
	if n0 > 0 {
		if n0%2 != 0 {
			return errors.New("the GNU sparse 0.0 records end with an offset and no length")
		}
		into["GNU.sparse.map"] = string(sparse0)
	}
	return nil
}

// decimal reports whether s is a non-empty string of decimal digits.
func decimal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
