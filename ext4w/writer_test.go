package ext4w_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

var mtime = time.Date(2023, 3, 4, 5, 6, 7, 891011121, time.UTC)

// build writes an image with fn's entries and returns its path.
func build(t *testing.T, fn func(w *ext4w.Writer) error, opts ...ext4w.Option) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "test.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ext4w.NewWriter(f, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ext4w.CheckImage(t, img) // the pure-Go self-check judges every image
	return img
}

func reg(mode uint32, size int) *ext4w.File {
	return &ext4w.File{Type: ext4w.TypeRegular, Mode: mode, Size: int64(size), Mtime: mtime}
}

func create(w *ext4w.Writer, name string, f *ext4w.File, data []byte) error {
	if err := w.Create(name, f); err != nil {
		return err
	}
	if len(data) > 0 {
		_, err := w.Write(data)
		return err
	}
	return nil
}

func content(seed string, n int) []byte {
	out := make([]byte, 0, n+32)
	h := sha256.Sum256([]byte(seed))
	for len(out) < n {
		out = append(out, h[:]...)
		h = sha256.Sum256(h[:])
	}
	return out[:n]
}

// sparse returns n blocks where every other block is zeros, so that the
// file has n/2 extents.
func sparse(n int) []byte {
	b := make([]byte, n*4096)
	for i := 0; i < n; i += 2 {
		copy(b[i*4096:], content(fmt.Sprint(i), 4096))
	}
	return b
}

// TestEntries writes each kind of entry and metadata in its own image and
// has e2fsck judge it.
func TestEntries(t *testing.T) {
	sym := func(target string) *ext4w.File {
		return &ext4w.File{Type: ext4w.TypeSymlink, Mode: 0o777, Linkname: target, Mtime: mtime}
	}
	dev := func(typ ext4w.FileType, major, minor uint32) *ext4w.File {
		return &ext4w.File{Type: typ, Mode: 0o660, Devmajor: major, Devminor: minor, Mtime: mtime}
	}
	dirf := func(mode uint32) *ext4w.File { return &ext4w.File{Type: ext4w.TypeDir, Mode: mode, Mtime: mtime} }
	for _, tc := range []struct {
		name string
		fn   func(w *ext4w.Writer) error
	}{
		{"empty", func(w *ext4w.Writer) error { return nil }},
		{"empty file", func(w *ext4w.Writer) error { return create(w, "f", reg(0o644, 0), nil) }},
		{"one byte", func(w *ext4w.Writer) error { return create(w, "f", reg(0o644, 1), []byte{7}) }},
		{"one block", func(w *ext4w.Writer) error { return create(w, "f", reg(0o644, 4096), content("a", 4096)) }},
		{"unaligned", func(w *ext4w.Writer) error { return create(w, "f", reg(0o644, 12345), content("b", 12345)) }},
		{"3 MiB in small writes", func(w *ext4w.Writer) error {
			data := content("c", 3<<20)
			if err := w.Create("f", reg(0o644, len(data))); err != nil {
				return err
			}
			for len(data) > 0 {
				k := min(len(data), 1000)
				if _, err := w.Write(data[:k]); err != nil {
					return err
				}
				data = data[k:]
			}
			return nil
		}},
		{"all zeros (a hole)", func(w *ext4w.Writer) error { return create(w, "f", reg(0o644, 1<<20), make([]byte, 1<<20)) }},
		{"8 extents (a tree block)", func(w *ext4w.Writer) error { return create(w, "f", reg(0o644, 16*4096), sparse(16)) }},
		{"3000 extents (depth 2)", func(w *ext4w.Writer) error { return create(w, "f", reg(0o644, 6000*4096), sparse(6000)) }},
		{"setuid setgid sticky", func(w *ext4w.Writer) error {
			return errors.Join(create(w, "suid", reg(0o4755, 0), nil), create(w, "sgid", reg(0o2755, 0), nil),
				w.Create("tmp", dirf(0o1777)), w.Create("sgdir", dirf(0o2775)))
		}},
		{"uid and gid above 65535", func(w *ext4w.Writer) error {
			f := reg(0o600, 0)
			f.Uid, f.Gid = 100000, 4000000000
			return create(w, "f", f, nil)
		}},
		{"fast symlink 59", func(w *ext4w.Writer) error { return w.Create("l", sym(strings.Repeat("s", 59))) }},
		{"slow symlink 60", func(w *ext4w.Writer) error { return w.Create("l", sym(strings.Repeat("s", 60))) }},
		{"symlink 4095", func(w *ext4w.Writer) error { return w.Create("l", sym(strings.Repeat("s/", 2047)+"x")) }},
		{"devices", func(w *ext4w.Writer) error {
			return errors.Join(w.Create("null", dev(ext4w.TypeCharDev, 1, 3)), w.Create("sda", dev(ext4w.TypeBlockDev, 8, 0)),
				w.Create("big", dev(ext4w.TypeCharDev, 4095, 1<<20-1)), w.Create("mid", dev(ext4w.TypeBlockDev, 259, 65536)))
		}},
		{"fifo and socket", func(w *ext4w.Writer) error {
			return errors.Join(w.Create("fifo", &ext4w.File{Type: ext4w.TypeFifo, Mode: 0o600, Mtime: mtime}),
				w.Create("sock", &ext4w.File{Type: ext4w.TypeSocket, Mode: 0o755, Mtime: mtime}))
		}},
		{"hardlink group of 3", func(w *ext4w.Writer) error {
			return errors.Join(create(w, "a", reg(0o644, 10), content("h", 10)), w.Link("a", "b"), w.Link("a", "sub/c"))
		}},
		{"255-byte and unicode names", func(w *ext4w.Writer) error {
			return errors.Join(create(w, strings.Repeat("n", 255), reg(0o644, 0), nil), create(w, "ünïcødé/名前.txt", reg(0o644, 0), nil))
		}},
		{"times from 1901 to 2446", func(w *ext4w.Writer) error {
			var errs []error
			for i, tm := range []time.Time{time.Unix(-1<<31, 0), time.Unix(-1, 999999999), time.Unix(0, 1),
				time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC), time.Date(2040, 2, 29, 0, 0, 0, 1, time.UTC),
				time.Date(2350, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(1<<31-1+3<<32, 999999999)} {
				f := reg(0o644, 0)
				f.Mtime, f.Atime, f.Ctime, f.Crtime = tm, tm.Add(time.Second), tm.Add(2*time.Second), tm.Add(-time.Second)
				errs = append(errs, create(w, fmt.Sprintf("t%d", i), f, nil))
			}
			return errors.Join(errs...)
		}},
		{"xattrs in the inode", func(w *ext4w.Writer) error {
			f := reg(0o755, 0)
			f.Xattrs = map[string][]byte{"security.capability": {1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "user.a": {}}
			return create(w, "f", f, nil)
		}},
		{"xattrs in a block, shared", func(w *ext4w.Writer) error {
			var errs []error
			for i := 0; i < 50; i++ {
				f := reg(0o644, 0)
				f.Xattrs = map[string][]byte{"user.big": content("x", 2048), "trusted.t": {0, 1, 2}, "user.z": []byte(fmt.Sprint(i % 2))}
				errs = append(errs, create(w, fmt.Sprintf("f%d", i), f, nil))
			}
			return errors.Join(errs...)
		}},
		{"a directory of 3000 names (htree)", func(w *ext4w.Writer) error {
			var errs []error
			for i := 0; i < 3000; i++ {
				errs = append(errs, create(w, fmt.Sprintf("d/entry-%05d-%s", i, strings.Repeat("x", i%40)), reg(0o644, 0), nil))
			}
			return errors.Join(errs...)
		}},
		{"replace and remove", func(w *ext4w.Writer) error {
			return errors.Join(
				create(w, "f", reg(0o644, 8192), content("old", 8192)),
				create(w, "f", reg(0o600, 5), content("new", 5)),
				create(w, "d/x", reg(0o644, 4096), content("x", 4096)),
				create(w, "d", reg(0o644, 3), content("y", 3)),
				create(w, "e/sub/y", reg(0o644, 0), nil),
				w.Create("e", dirf(0o700)),
				create(w, "g/z", reg(0o644, 100), content("z", 100)),
				w.Link("g/z", "g/z2"),
				w.Remove("g/z"),
				w.Remove("e/sub"),
			)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := build(t, tc.fn)
			oracle.Fsck(t, img)
		})
	}
}

// TestBadEntries checks that invalid entries are refused with the entry
// named, and that the writer goes on.
func TestBadEntries(t *testing.T) {
	build(t, func(w *ext4w.Writer) error {
		for _, tc := range []struct {
			name string
			f    *ext4w.File
			want error
		}{
			{"../x", reg(0o644, 0), ext4w.ErrBadName},
			{"/abs", reg(0o644, 0), ext4w.ErrBadName},
			{"a//b", reg(0o644, 0), ext4w.ErrBadName},
			{strings.Repeat("n", 256), reg(0o644, 0), ext4w.ErrBadName},
			{"mode", reg(0o17777, 0), ext4w.ErrInvalid},
			{"dev", &ext4w.File{Type: ext4w.TypeCharDev, Devmajor: 4096}, ext4w.ErrInvalid},
			{"link", &ext4w.File{Type: ext4w.TypeSymlink, Linkname: strings.Repeat("l", 4096)}, ext4w.ErrInvalid},
			{"xattr", &ext4w.File{Type: ext4w.TypeRegular, Xattrs: map[string][]byte{"bogus.x": nil}}, ext4w.ErrInvalid},
			{"big xattr", &ext4w.File{Type: ext4w.TypeRegular, Xattrs: map[string][]byte{"user.x": make([]byte, 5000)}}, ext4w.ErrInvalid},
			{"type", &ext4w.File{Type: 99}, ext4w.ErrInvalid},
		} {
			err := w.Create(tc.name, tc.f)
			var ee *ext4w.EntryError
			if !errors.Is(err, tc.want) || !errors.As(err, &ee) || ee.Name != tc.name {
				t.Errorf("%q: got %v, want %v naming the entry", tc.name, err, tc.want)
			}
		}
		if err := create(w, "file", reg(0o644, 0), nil); err != nil {
			return err
		}
		if err := w.Create("file/under", reg(0o644, 0)); !errors.Is(err, ext4w.ErrNotDir) {
			t.Errorf("entry under a file: got %v", err)
		}
		if err := w.Link("missing", "l"); !errors.Is(err, ext4w.ErrNotExist) {
			t.Errorf("link to a missing entry: got %v", err)
		}
		if err := w.Create("d", &ext4w.File{Type: ext4w.TypeDir, Mode: 0o755}); err != nil {
			return err
		}
		if err := w.Link("d", "l"); !errors.Is(err, ext4w.ErrIsDir) {
			t.Errorf("link to a directory: got %v", err)
		}
		return nil
	})
}

func TestShortAndLongWrites(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := ext4w.NewWriter(f)
	w.Create("a", reg(0o644, 3))
	if _, err := w.Write([]byte("abcd")); !errors.Is(err, ext4w.ErrWriteTooLong) {
		t.Errorf("long write: %v", err)
	}
	if err := w.WriteHole(4); !errors.Is(err, ext4w.ErrWriteTooLong) {
		t.Errorf("long hole: %v", err)
	}
	if err := w.WriteHole(-1); !errors.Is(err, ext4w.ErrWriteTooLong) {
		t.Errorf("negative hole: %v", err)
	}
	w.Write([]byte("a"))
	w.WriteHole(1)
	if err := w.Create("b", reg(0o644, 0)); !errors.Is(err, ext4w.ErrShortWrite) {
		t.Errorf("short write: %v", err)
	}
	if err := w.WriteHole(1); !errors.Is(err, ext4w.ErrShortWrite) {
		t.Errorf("a hole after the error: %v", err)
	}
}

// TestNoSpace checks that a fixed size too small stops writing and says
// how much the whole content needs.
func TestNoSpace(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ext4w.NewWriter(f, ext4w.WithSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	chunk := content("n", 1<<20)
	for i := 0; i < 100; i++ {
		if err := w.Create(fmt.Sprintf("f%d", i), reg(0o644, len(chunk))); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if !w.OutOfSpace() {
		t.Error("OutOfSpace is false after 100 MiB into 64 MiB")
	}
	err = w.Close()
	var se *ext4w.SizeError
	if !errors.As(err, &se) || !errors.Is(err, ext4w.ErrNoSpace) {
		t.Fatalf("got %v, want a SizeError", err)
	}
	if se.NeedBytes < 100<<20 || se.NeedBytes > 140<<20 || se.FirstFailed == "" {
		t.Errorf("needs %d bytes, first failed %q", se.NeedBytes, se.FirstFailed)
	}
	if !strings.Contains(err.Error(), "needs at least") {
		t.Errorf("message %q", err)
	}
	st, _ := f.Stat()
	if st.Size() > 64<<20 {
		t.Errorf("the output grew to %d bytes", st.Size())
	}
}

func TestTooFewInodes(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := ext4w.NewWriter(f, ext4w.WithInodes(20))
	for i := 0; i < 40; i++ {
		w.Create(fmt.Sprintf("f%d", i), reg(0o644, 0))
	}
	err = w.Close()
	var se *ext4w.SizeError
	if !errors.As(err, &se) || !errors.Is(err, ext4w.ErrTooManyInodes) || se.NeedInodes != 51 {
		t.Fatalf("got %v (%+v), want a SizeError needing 51 inodes", err, se)
	}
}

// TestDeterministic writes the same content twice and compares the bytes.
func TestDeterministic(t *testing.T) {
	fn := func(w *ext4w.Writer) error {
		var errs []error
		for i := 0; i < 200; i++ {
			errs = append(errs, create(w, fmt.Sprintf("d%d/f%d", i%7, i), reg(0o644, i*100), content(fmt.Sprint(i), i*100)))
		}
		return errors.Join(errs...)
	}
	a, b := build(t, fn), build(t, fn)
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("two images of the same input differ")
	}
	c := build(t, fn, ext4w.WithSalt([]byte("other")))
	cb, _ := os.ReadFile(c)
	if bytes.Equal(ab, cb) {
		t.Fatal("a different salt gave the same image (UUID not derived from the input?)")
	}
}

// TestLargeDirectory writes 100,000 names in one directory: a two-level
// htree. e2fsck checks the tree and debugfs finds names through it.
func TestLargeDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	img := build(t, func(w *ext4w.Writer) error {
		for i := 0; i < 100000; i++ {
			if err := w.Create(fmt.Sprintf("big/file-number-%06d", i), reg(0o644, 0)); err != nil {
				return err
			}
		}
		return nil
	})
	oracle.Fsck(t, img)
	out, err := exec.Command("debugfs", "-R", "htree big", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Indirect levels: 1") {
		t.Fatalf("debugfs htree: %v\n%.2000s", err, out)
	}
	for _, name := range []string{"file-number-000000", "file-number-054321", "file-number-099999"} {
		out, err := exec.Command("debugfs", "-R", "stat big/"+name, img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Type: regular") {
			t.Errorf("debugfs cannot find %s: %v\n%.500s", name, err, out)
		}
	}
}

// TestInodesBeyondCapacity: a group holds at most 32768 inodes, so a
// fixed size bounds --inodes.
func TestInodesBeyondCapacity(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := ext4w.NewWriter(f, ext4w.WithSize(64<<20), ext4w.WithInodes(100000))
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "holds at most 32768") {
		t.Fatalf("got %v", err)
	}
}

// TestChunkingDoesNotMatter: the image depends on the bytes, not on how
// Write was called (a gzip or zstd reader hands data over in any sizes),
// nor on whether zeros came as WriteHole.
func TestChunkingDoesNotMatter(t *testing.T) {
	data := sparse(300)
	copy(data[5000:], content("tail", 3000))
	var images [][]byte
	// Negative: zeros go in as WriteHole, in chunks of that size.
	for _, chunk := range []int{1, 1000, 4097, 1 << 20, len(data), -1, -700, -4096, -5000, -len(data)} {
		img := build(t, func(w *ext4w.Writer) error {
			if err := w.Create("f", reg(0o644, len(data))); err != nil {
				return err
			}
			return writeSplit(w, data, chunk)
		})
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, b)
	}
	for i := 1; i < len(images); i++ {
		if !bytes.Equal(images[0], images[i]) {
			t.Fatalf("writing in chunks of a different size gave a different image (case %d)", i)
		}
	}
}

// writeSplit writes data in chunks of n bytes, or of -n bytes with runs
// of zeros in each chunk given to WriteHole.
func writeSplit(w *ext4w.Writer, data []byte, n int) error {
	holes := n < 0
	n = max(n, -n)
	for p := data; len(p) > 0; {
		c := p[:min(len(p), n)]
		p = p[len(c):]
		for len(c) > 0 {
			k := 1
			for k < len(c) && (c[k] == 0) == (c[0] == 0) {
				k++
			}
			if holes && c[0] == 0 {
				if err := w.WriteHole(int64(k)); err != nil {
					return err
				}
			} else if _, err := w.Write(c[:k]); err != nil {
				return err
			}
			c = c[k:]
		}
	}
	return nil
}

// TestClampWarns checks SPEC's time rules from the caller's side: times ext4
// holds exactly are stored without a word, and a time outside 1901..2446
// or in e2fsck's "likely pre-1970" band (2310-04-04 16:10:40 UTC to
// 2378-04-22) is clamped with a warning that says so.
func TestClampWarns(t *testing.T) {
	for _, tc := range []struct {
		when time.Time
		warn bool
	}{
		{time.Date(1901, 12, 14, 0, 0, 0, 0, time.UTC), false},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2309, 12, 31, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2310, 4, 4, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2310, 4, 5, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2378, 4, 21, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2379, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2446, 5, 10, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2447, 1, 1, 0, 0, 0, 0, time.UTC), true},
	} {
		t.Run(tc.when.Format("2006-01-02"), func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "img"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var warns []string
			w, err := ext4w.NewWriter(f, ext4w.WithWarn(func(m string) { warns = append(warns, m) }))
			if err != nil {
				t.Fatal(err)
			}
			file := reg(0o644, 0)
			file.Mtime = tc.when
			if err := w.Create("f", file); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.warn != (len(warns) > 0) {
				t.Fatalf("warnings %q, want a warning: %v", warns, tc.warn)
			}
			for _, m := range warns {
				if !strings.Contains(m, "clamped") || !strings.Contains(m, tc.when.Format("2006-01-02")) {
					t.Errorf("warning %q does not name the time and say it was clamped", m)
				}
			}
		})
	}
}
