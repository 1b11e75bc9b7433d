package inflate

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// flateDecode is the judge of raw DEFLATE: what compress/flate decodes
// from raw, and its error.
func flateDecode(raw []byte) ([]byte, error) {
	return io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
}

// gzipDecode is the judge of gzip: compress/gzip, every member.
func gzipDecode(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// ourDecode reads raw with a Reader, through io.ReadAll's small reads.
func ourDecode(raw []byte) ([]byte, error) {
	return io.ReadAll(NewReader(bytes.NewReader(raw)))
}

// ourGunzip reads data with a GzipReader through WriteTo.
func ourGunzip(data []byte) ([]byte, error) {
	zr, err := NewGzipReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	_, err = zr.WriteTo(&b)
	return b.Bytes(), err
}

// agree fails t unless the two decodes agree: both succeed with the same
// bytes, or both fail having given bytes one of which begins the other
// (a decoder may stop earlier or later before an error, never give other
// bytes).
func agree(t testing.TB, name string, want []byte, wantErr error, got []byte, gotErr error) {
	t.Helper()
	switch {
	case wantErr == nil && gotErr != nil:
		t.Fatalf("%s: the judge decodes %d bytes, inflate fails: %v", name, len(want), gotErr)
	case wantErr != nil && gotErr == nil:
		t.Fatalf("%s: the judge fails (%v), inflate decodes %d bytes", name, wantErr, len(got))
	case wantErr == nil && !bytes.Equal(got, want):
		t.Fatalf("%s: inflate's %d bytes differ from the judge's %d at byte %d", name, len(got), len(want), firstDiff(got, want))
	case wantErr != nil && !bytes.HasPrefix(got, want) && !bytes.HasPrefix(want, got):
		t.Fatalf("%s: both fail (%v; %v), but inflate's %d bytes differ from the judge's %d at byte %d", name, wantErr, gotErr, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// checkRaw judges raw DEFLATE data, read whole and a byte at a time.
func checkRaw(t testing.TB, name string, raw []byte) {
	t.Helper()
	want, wantErr := flateDecode(raw)
	got, gotErr := ourDecode(raw)
	agree(t, name, want, wantErr, got, gotErr)
	got, gotErr = io.ReadAll(NewReader(iotest.OneByteReader(bytes.NewReader(raw))))
	agree(t, name+" (one byte a read)", want, wantErr, got, gotErr)
}

// checkGzip judges a gzip file, read whole, a byte at a time, and with
// each member's input given in two reads split at a random place.
func checkGzip(t testing.TB, name string, data []byte) {
	t.Helper()
	want, wantErr := gzipDecode(data)
	got, gotErr := ourGunzip(data)
	agree(t, name, want, wantErr, got, gotErr)
	if len(data) > 256<<10 {
		return
	}
	got, gotErr = readAllGzip(iotest.OneByteReader(bytes.NewReader(data)))
	agree(t, name+" (one byte a read)", want, wantErr, got, gotErr)
	got, gotErr = readAllGzip(iotest.HalfReader(bytes.NewReader(data)))
	agree(t, name+" (half reads)", want, wantErr, got, gotErr)
}

func readAllGzip(r io.Reader) ([]byte, error) {
	zr, err := NewGzipReader(r)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// Test inputs: text-like, binary-like and repetitive data, made from a
// seed so that a failure can be repeated.
func sampleText(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := []string{"the", "ext4", "inode", "block", "group", "extent", "journal", "superblock", "directory", "hash", "tree", "\n", "    ", "func", "return", "err", "nil", "if", "{", "}", "(", ")"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(" \n\t."[r.IntN(4)])
		if r.IntN(50) == 0 {
			fmt.Fprintf(&b, "%d", r.Uint64())
		}
	}
	return b.Bytes()[:n]
}

func sampleBinary(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := 0; i < n; {
		switch r.IntN(4) {
		case 0: // noise
			k := min(n-i, 1+r.IntN(300))
			for j := range k {
				b[i+j] = byte(r.Uint32())
			}
			i += k
		case 1: // a run
			k := min(n-i, 1+r.IntN(2000))
			c := byte(r.IntN(3))
			for j := range k {
				b[i+j] = c
			}
			i += k
		default: // a copy of something earlier, near or far
			if i == 0 {
				continue
			}
			d := 1 + r.IntN(min(i, 40000))
			k := min(n-i, 3+r.IntN(400))
			for j := range k {
				b[i+j] = b[i+j-d]
			}
			i += k
		}
	}
	return b
}
