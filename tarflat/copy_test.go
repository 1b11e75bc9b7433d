package tarflat

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// newImage returns a Writer on a scratch file.
func newImage(t *testing.T, opts ...ext4w.Option) *ext4w.Writer {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	w, err := ext4w.NewWriter(f, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestCopyRejects checks the rules that need the tree built so far: each
// is an EntryError naming the entry and its offset, with a message that
// says what is wrong.
func TestCopyRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []tartest.Entry
		bad     int // index of the entry refused
		msg     string
	}{
		{"hardlink to a later entry", []tartest.Entry{tartest.Hardlink("bin/sh", "bin/bash"), tartest.File("bin/bash", 0o755, "x")}, 0,
			`hardlink to "bin/bash", which no earlier entry made`},
		{"hardlink to a removed entry", []tartest.Entry{tartest.File("a", 0o644, ""), tartest.Whiteout(".wh.a"), tartest.Hardlink("b", "a")}, 2,
			`hardlink to "a", which no earlier entry made`},
		{"hardlink to a directory", []tartest.Entry{tartest.Dir("etc", 0o755), tartest.Hardlink("x", "etc")}, 1, `hardlink to directory "etc"`},
		{"hardlink through a file", []tartest.Entry{tartest.File("a", 0o644, ""), tartest.Hardlink("b", "a/c")}, 1, `hardlink to "a/c", which no earlier entry made`},
		{"entry under a file", []tartest.Entry{tartest.File("etc/passwd", 0o644, "x"), tartest.File("etc/passwd/x", 0o644, "")}, 1,
			`"etc/passwd" is a regular file, not a directory, so nothing can go under it`},
		{"entry deep under a file", []tartest.Entry{tartest.File("a", 0o644, ""), tartest.Dir("a/b/c", 0o755)}, 1, `"a" is a regular file, not a directory`},
		{"entry under a symlink", []tartest.Entry{tartest.Dir("usr/bin", 0o755), tartest.Symlink("bin", "usr/bin"), tartest.File("bin/sh", 0o755, "")}, 2,
			`"bin" is a symlink (to "usr/bin"), not a directory`},
		{"entry under a fifo", []tartest.Entry{tartest.Fifo("p", 0o644), tartest.File("p/x", 0o644, "")}, 1,
			`"p" is a fifo, not a directory`},
		{"hardlink under a file", []tartest.Entry{tartest.File("a", 0o644, ""), tartest.File("f", 0o644, ""), tartest.Hardlink("f/x", "a")}, 2,
			`"f" is a regular file, not a directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, offs := tartest.Offsets(t, tc.entries...)
			r := NewReader(bytes.NewReader(in))
			_, err := Copy(newImage(t), r)
			var ee *EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("want an EntryError, got %v", err)
			}
			t.Log(err)
			if want := tc.entries[tc.bad].Name; ee.Name != want || ee.Offset != offs[tc.bad] {
				t.Errorf("names %q at %d, want %q at %d", ee.Name, ee.Offset, want, offs[tc.bad])
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

// TestCopyOutOfSpace checks that Copy reads the whole tar after the image
// is full, warns once, and that Close then says what the whole tar needs.
func TestCopyOutOfSpace(t *testing.T) {
	block := bytes.Repeat([]byte("full"), 1024)
	big := bytes.Repeat(block, 40<<20/len(block)) // 40 MiB of data
	in := tartest.Bytes(t, tartest.File("a", 0o644, big), tartest.File("b", 0o644, big), tartest.File("c", 0o644, "last"))
	var warns []string
	r := NewReader(bytes.NewReader(in), WithWarn(func(m string) { warns = append(warns, m) }))
	w := newImage(t, ext4w.WithSize(ext4w.MinSize))
	info, err := Copy(w, r)
	if err != nil {
		t.Fatal(err)
	}
	if info.Entries != 3 || info.Bytes != 2*int64(len(big))+4 || r.BytesRead() != int64(len(in)) {
		t.Errorf("read %d entries, %d bytes, %d of %d tar bytes", info.Entries, info.Bytes, r.BytesRead(), len(in))
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `"b"`) {
		t.Errorf("warnings %q, want one naming b", warns)
	}
	var se *ext4w.SizeError
	if err := w.Close(); !errors.As(err, &se) || se.NeedBytes < 80<<20 {
		t.Fatalf("Close: %v (%+v), want a SizeError needing over 80 MiB", err, se)
	}
}

// TestCopyTruncatedData checks that input cut in the middle of a file is
// an error naming the file, not a short file.
func TestCopyTruncatedData(t *testing.T) {
	in, offs := tartest.Offsets(t, tartest.File("etc/os-release", 0o644, "ID=x\n"), tartest.File("usr/bin/x", 0o755, x86))
	cut := in[:offs[1]+512+30] // in the middle of x's ELF header
	_, err := Copy(newImage(t), NewReader(bytes.NewReader(cut)))
	var ee *EntryError
	if !errors.As(err, &ee) || ee.Name != "usr/bin/x" || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("got %v", err)
	}
}
