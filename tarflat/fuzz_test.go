package tarflat

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// FuzzReader feeds arbitrary bytes to a Reader: it must never panic, every
// error must say what kind it is (an EntryError or ErrFormat), and entry
// offsets must be block-aligned and increasing.
func FuzzReader(f *testing.F) {
	seed := tartest.Bytes(f,
		tartest.Dir("etc/", 0o755),
		tartest.File("etc/f", 0o644, "data").In(tar.FormatPAX).PAX("SCHILY.xattr.user.x", "v"),
		tartest.Whiteout("etc/.wh.f"),
		tartest.Hardlink("l", "etc/f"),
	)
	f.Add(seed)
	f.Add(oracle.Gzip(f, seed))
	f.Add(oracle.Zstd(f, seed))
	if tars, _ := filepath.Glob("../testdata/*.tar"); len(tars) > 0 {
		if b, err := os.ReadFile(tars[0]); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		defer r.Close()
		last := int64(-1)
		for {
			e, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var ee *EntryError
				if !errors.As(err, &ee) && !errors.Is(err, ErrFormat) {
					t.Fatalf("error of no kind: %T %v", err, err)
				}
				if !errors.As(err, &ee) || errors.Is(err, ErrFormat) || ee.Offset < 0 {
					return // the stream is broken
				}
				continue // a rejected entry: the stream goes on
			}
			if e.Offset%blockSize != 0 || e.Offset <= last {
				t.Fatalf("entry %q at offset %d after %d", e.Raw, e.Offset, last)
			}
			last = e.Offset
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
		}
	})
}
