package tarflat

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"
)

// rawHeader builds one 512-byte tar header by hand, for what
// archive/tar's Writer will not write: v7 headers, unknown typeflags,
// PAX sparse records, bad checksums.
type rawHeader struct {
	name     string
	typeflag byte
	size     int64
	mode     int64
	link     string
	major    int64
	minor    int64
	mtime    int64
	magic    string // "ustar" (POSIX, the default), "gnu" or "v7" (none)
}

func (h rawHeader) block() []byte {
	b := make([]byte, blockSize)
	octal := func(off, width int, v int64) {
		copy(b[off:off+width], fmt.Sprintf("%0*o\x00", width-1, v))
	}
	copy(b[0:100], h.name)
	mode := h.mode
	if mode == 0 {
		mode = 0o644
	}
	octal(100, 8, mode)
	octal(108, 8, 0)
	octal(116, 8, 0)
	octal(124, 12, h.size)
	octal(136, 12, h.mtime)
	b[156] = h.typeflag
	copy(b[157:257], h.link)
	switch h.magic {
	case "", "ustar":
		copy(b[257:], "ustar\x0000")
	case "gnu":
		copy(b[257:], "ustar  \x00")
	}
	if h.magic != "v7" {
		octal(329, 8, h.major)
		octal(337, 8, h.minor)
	}
	setChecksum(b)
	return b
}

// setChecksum writes the ustar checksum of b: the sum of its bytes with
// the checksum field itself counted as spaces.
func setChecksum(b []byte) {
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// pad rounds data up to whole blocks with zeros.
func pad(data []byte) []byte {
	n := (len(data) + blockSize - 1) / blockSize * blockSize
	return append(data[:len(data):len(data)], make([]byte, n-len(data))...)
}

// paxRecords encodes PAX records ("LEN KEY=VALUE\n", where LEN counts
// itself) in the given order.
func paxRecords(kv ...string) []byte {
	var out []byte
	for i := 0; i+1 < len(kv); i += 2 {
		rec := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		out = append(out, fmt.Sprintf("%d%s", n, rec)...)
	}
	return out
}

// paxEntry is a PAX extended header carrying kv, as blocks.
func paxEntry(typeflag byte, kv ...string) []byte {
	recs := paxRecords(kv...)
	h := rawHeader{name: "PaxHeaders/x", typeflag: typeflag, size: int64(len(recs))}
	return append(h.block(), pad(recs)...)
}

// endMarker is tar's end of archive: two zero blocks.
var endMarker = make([]byte, 2*blockSize)

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// tarEntry is one member for writeTar.
type tarEntry struct {
	hdr  tar.Header
	data []byte
}

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// writeTar writes entries with archive/tar and returns the tar and, for
// each entry, the offset of its first header block: the writer has
// written everything before it once Flush returns.
func writeTar(t testing.TB, entries ...tarEntry) ([]byte, []int64) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	var offs []int64
	for _, e := range entries {
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		offs = append(offs, int64(b.Len()))
		h := e.hdr
		if h.ModTime.IsZero() {
			h.ModTime = testTime
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), offs
}

// readAll reads every entry of the stream with its data and returns the
// entries, the data of each, the warnings and the first error.
func readAll(in []byte) (es []*Entry, data [][]byte, warns []string, err error) {
	r := NewReader(bytes.NewReader(in), WithWarn(func(m string) { warns = append(warns, m) }))
	defer r.Close()
	for {
		e, err := r.Next()
		if err == io.EOF {
			return es, data, warns, nil
		}
		if err != nil {
			return es, data, warns, err
		}
		d, err := io.ReadAll(r)
		if err != nil {
			return es, data, warns, err
		}
		es = append(es, e)
		data = append(data, d)
	}
}
