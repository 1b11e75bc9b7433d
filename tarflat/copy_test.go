package tarflat

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
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
		entries []tarEntry
		bad     int // index of the entry refused
		msg     string
	}{
		{"hardlink to a later entry", []tarEntry{hardlink("bin/sh", "bin/bash"), file("bin/bash", 0o755, []byte("x"))}, 0,
			`hardlink to "bin/bash", which no earlier entry made`},
		{"hardlink to a removed entry", []tarEntry{file("a", 0o644, nil), whiteout(".wh.a"), hardlink("b", "a")}, 2,
			`hardlink to "a", which no earlier entry made`},
		{"hardlink to a directory", []tarEntry{dir("etc"), hardlink("x", "etc")}, 1, `hardlink to directory "etc"`},
		{"hardlink through a file", []tarEntry{file("a", 0o644, nil), hardlink("b", "a/c")}, 1, `hardlink to "a/c", which no earlier entry made`},
		{"entry under a file", []tarEntry{file("etc/passwd", 0o644, []byte("x")), file("etc/passwd/x", 0o644, nil)}, 1,
			`"etc/passwd" is a regular file, not a directory, so nothing can go under it`},
		{"entry deep under a file", []tarEntry{file("a", 0o644, nil), dir("a/b/c")}, 1, `"a" is a regular file, not a directory`},
		{"entry under a symlink", []tarEntry{dir("usr/bin"), symlink("bin", "usr/bin"), file("bin/sh", 0o755, nil)}, 2,
			`"bin" is a symlink (to "usr/bin"), not a directory`},
		{"entry under a fifo", []tarEntry{{hdr: tar.Header{Name: "p", Typeflag: tar.TypeFifo}}, file("p/x", 0o644, nil)}, 1,
			`"p" is a fifo, not a directory`},
		{"hardlink under a file", []tarEntry{file("a", 0o644, nil), file("f", 0o644, nil), hardlink("f/x", "a")}, 2,
			`"f" is a regular file, not a directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, offs := writeTar(t, tc.entries...)
			r := NewReader(bytes.NewReader(in))
			_, err := Copy(newImage(t), r)
			var ee *EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("want an EntryError, got %v", err)
			}
			t.Log(err)
			if want := tc.entries[tc.bad].hdr.Name; ee.Name != want || ee.Offset != offs[tc.bad] {
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
	in, _ := writeTar(t, file("a", 0o644, big), file("b", 0o644, big), file("c", 0o644, []byte("last")))
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
	in, offs := writeTar(t, file("etc/os-release", 0o644, []byte("ID=x\n")), file("usr/bin/x", 0o755, x86))
	cut := in[:offs[1]+512+30] // in the middle of x's ELF header
	_, err := Copy(newImage(t), NewReader(bytes.NewReader(cut)))
	var ee *EntryError
	if !errors.As(err, &ee) || ee.Name != "usr/bin/x" || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("got %v", err)
	}
}
