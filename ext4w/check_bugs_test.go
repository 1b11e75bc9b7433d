package ext4w_test

// check_bugs_test.go: writer bugs the fuzzers and the self-check found
// (issue 9), fixed in 645900e (the 2310 times in 0916cee). Each test
// states the correct behaviour and stays as a regression test. A new
// bug gets a test here skipped until its fix lands, and, if the fuzzers
// keep finding it meanwhile, a guard under avoidKnownBugs in
// fuzz_writer_test.go.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// buildNoFatal is build without t.Fatal on the callback's error, and
// with a panic turned into a test failure.
func buildNoFatal(t *testing.T, fn func(w *ext4w.Writer) error) (img string, fnErr, closeErr error) {
	t.Helper()
	img = filepath.Join(t.TempDir(), "bug.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ext4w.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("the writer panicked: %v", p)
		}
	}()
	fnErr = fn(w)
	closeErr = w.Close()
	return img, fnErr, closeErr
}

// TestBugXattrsOverflowBlock: parseXattrs checks that each xattr fits a
// block on its own, but not that those left out of the inode fit one
// block together. putXattrEntries then writes values over the entries
// (a corrupt block) or, further past, slices at a negative offset and
// panics, in Close. Found by FuzzWriter in seconds.
func TestBugXattrsOverflowBlock(t *testing.T) {
	for _, tc := range []struct {
		name   string
		xattrs map[string][]byte
	}{
		// Values over the entry table: a corrupt block.
		{"4000+3 bytes", map[string][]byte{"user.b": make([]byte, 4000), "user.é": {1, 2, 3}, "system.data": nil}},
		// Five values of 1000 bytes: the fifth lands at -904, a panic.
		{"5x1000 bytes", map[string][]byte{"user.x0": make([]byte, 1000), "user.x1": make([]byte, 1000),
			"user.x2": make([]byte, 1000), "user.x3": make([]byte, 1000), "user.x4": make([]byte, 1000)}},
		// 300 names: the entry table alone runs off the block.
		{"300 names", func() map[string][]byte {
			m := map[string][]byte{}
			for i := 0; i < 300; i++ {
				m[fmt.Sprintf("user.n%03d", i)] = nil
			}
			return m
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err, closeErr := buildNoFatal(t, func(w *ext4w.Writer) error {
				f := reg(0o644, 0)
				f.Xattrs = tc.xattrs
				return w.Create("f", f)
			})
			if err != nil {
				// Refusing the entry is right: ErrInvalid, naming it.
				var ee *ext4w.EntryError
				if !errors.Is(err, ext4w.ErrInvalid) || !errors.As(err, &ee) || ee.Name != "f" {
					t.Errorf("got %v, want ErrInvalid naming f", err)
				}
				return
			}
			if closeErr != nil {
				t.Fatal(closeErr)
			}
			ext4w.CheckImage(t, img)
			oracle.Fsck(t, img)
		})
	}
}

// TestBugLinkOverTargetsAncestor: Link(old, new) unlinks what new names
// before it adds the name. When new is a directory holding old, that
// unlink drops the target's last name, and release() zeroes the inode;
// the link then points a directory entry at the dead inode, and Link
// returns nil. The image has neither d nor d/f (e2fsck is clean: the
// entry reads as deleted), and the file's data is gone. A tar can do it:
// "d/", "d/f", then a hardlink "d" -> "d/f". Found by FuzzWriter.
func TestBugLinkOverTargetsAncestor(t *testing.T) {
	img, err, closeErr := buildNoFatal(t, func(w *ext4w.Writer) error {
		if err := create(w, "d/f", reg(0o644, 5), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		return w.Link("d/f", "d")
	})
	if closeErr != nil {
		t.Fatal(closeErr)
	}
	ext4w.CheckImage(t, img)
	got, rerr := ext4w.ReadBack(img)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		// An error is a fine answer too (tar -x fails here), as long as
		// it names the entry and the image still holds d/f.
		if _, ok := got["d/f"]; !ok {
			t.Errorf("Link failed (%v) but d/f is gone", err)
		}
		return
	}
	e, ok := got["d"]
	if !ok || e.Type != ext4w.TypeRegular || e.Size != 5 {
		t.Errorf("Link succeeded, but d is %+v (present: %v); want the 5-byte file", e, ok)
	}
}

// TestBugInvalidACLKept: aclToDisk sorts a version-2 ACL but does not
// check it as the kernel's posix_acl_valid does (one owner, group and
// other entry, a mask with named entries, no id twice), and keeps a
// version-1 (disk form) value without any check, though its comment says
// it is checked. The kernel then fails getfacl, and open() by anyone but
// the owner, with EINVAL: checked by mounting such an image. Found by
// FuzzWriter and the self-check's ACL rules.
func TestBugInvalidACLKept(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    []byte
	}{
		{"no owner entry", ext4w.EncodeACLXattr([]ext4w.ACLEntry{{Tag: 4, Perm: 5}, {Tag: 0x20, Perm: 4}, {Tag: 2, Perm: 7, ID: 5}})},
		{"named entry without a mask", ext4w.EncodeACLXattr([]ext4w.ACLEntry{{Tag: 1, Perm: 7}, {Tag: 4, Perm: 5}, {Tag: 0x20, Perm: 4}, {Tag: 2, Perm: 7, ID: 5}})},
		{"one id twice", ext4w.EncodeACLXattr([]ext4w.ACLEntry{{Tag: 1, Perm: 7}, {Tag: 2, Perm: 7, ID: 5}, {Tag: 2, Perm: 1, ID: 5},
			{Tag: 4, Perm: 5}, {Tag: 0x10, Perm: 7}, {Tag: 0x20, Perm: 4}})},
		{"disk form, unknown tag", []byte{1, 0, 0, 0, 0x99, 0, 7, 0}},
		{"disk form, partial entry", []byte{1, 0, 0, 0, 1, 0, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err, closeErr := buildNoFatal(t, func(w *ext4w.Writer) error {
				f := reg(0o644, 0)
				f.Xattrs = map[string][]byte{"system.posix_acl_access": tc.v}
				return w.Create("f", f)
			})
			if closeErr != nil {
				t.Fatal(closeErr)
			}
			if !errors.Is(err, ext4w.ErrInvalid) {
				t.Errorf("Create with an invalid ACL: %v, want ErrInvalid", err)
				if cerr := ext4w.SelfCheck(img); cerr != nil {
					t.Logf("the self-check of the image: %v", cerr)
				}
			}
		})
	}
}

// TestTimeIn2310To2378: a time from 2310-04-04 to 2378-04-22 would be
// encoded with epoch bits 3 and a negative 32-bit seconds field, which
// e2fsck (pass1.c, check_inode_extra_negative_epoch) takes for a pre-1970
// time an old kernel mis-encoded: e2fsck -fn reports "Timestamp(s) on
// inode N beyond 2310-04-04 are likely pre-1970" and e2fsck -p rewrites
// it. One such mtime also became the root's and lost+found's default
// time. Found by the self-check; fixed by moving such times to just
// before 2310-04-04 (0916cee).
func TestTimeIn2310To2378(t *testing.T) {
	img, err, closeErr := buildNoFatal(t, func(w *ext4w.Writer) error {
		f := reg(0o644, 0)
		f.Mtime = time.Date(2350, 1, 1, 0, 0, 0, 0, time.UTC)
		return w.Create("f", f)
	})
	if err != nil || closeErr != nil {
		t.Fatal(err, closeErr)
	}
	ext4w.CheckImage(t, img)
	oracle.Fsck(t, img)
}

// TestBugHtreeIndexFull: without large_dir an htree has two levels, so a
// directory holds at most 507 x 510 = 258,570 leaf blocks. buildHtree
// does not check it: past that the dx_root gets more entries than its
// limit of 507. The 508th lands on the dx_tail (a corrupt index the
// kernel refuses); from the 509th on putDxEntries writes past the block
// and panics, in Close, and ext4pack dies with a stack trace and leaves
// its temporary file (a panic runs no cleanup). A tar with 3.9 million
// 255-byte names in one directory (about 2 GiB of tar) does it. The
// writer should refuse it, as the kernel does (ENOSPC, "Directory index
// full"). Found by reading the code the self-check checks; run by hand,
// the self-check reports "dx_root has count 508, limit 507". Too big for
// the suite even once fixed: 3.9 million names, 7 GiB and 50 s here.
func TestBugHtreeIndexFull(t *testing.T) {
	t.Skip("fixed (Close refuses such a directory), but too big for the suite: 3.9 million names, 7 GiB and 50 s")
	const n = 507*510*15 + 1 // 15 names of 255 bytes fill a leaf
	pad := strings.Repeat("n", 255-8)
	var createErr error
	img, err, closeErr := buildNoFatal(t, func(w *ext4w.Writer) error {
		for i := 0; i < n; i++ {
			if err := w.Create(fmt.Sprintf("d/%s%08d", pad, i), reg(0o644, 0)); err != nil {
				createErr = err
				return nil
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if createErr == nil && closeErr == nil {
		ext4w.CheckImage(t, img)
		return
	}
	t.Logf("refused: %v %v", createErr, closeErr)
}

// TestBugCloseAfterErrorLeaks: Close returns at once when the last file
// is short (or after an I/O error) without stopping the Writer's
// background goroutine, which keeps its three 4 MiB buffers: each such
// Writer leaks a goroutine and 12 MiB. A program that builds images in a
// loop (a server; FuzzTarflat, which ran out of 23 GiB in 90 s) runs out
// of memory. ext4pack itself exits after an error, so it does not show
// there. tarflat.Copy's callers cannot avoid it: after a failed Copy,
// the current file is short.
func TestBugCloseAfterErrorLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 10; i++ {
		f, err := os.Create(filepath.Join(t.TempDir(), "img"))
		if err != nil {
			t.Fatal(err)
		}
		w, err := ext4w.NewWriter(f)
		if err != nil {
			t.Fatal(err)
		}
		// A whole first file starts the background writer; the second
		// is cut short, as a truncated tar leaves it.
		if err := create(w, "a", reg(0o644, 8192), content("a", 8192)); err != nil {
			t.Fatal(err)
		}
		if err := w.Create("b", reg(0o644, 1<<20)); err != nil {
			t.Fatal(err)
		}
		w.Write(content("b", 1000))
		if err := w.Close(); !errors.Is(err, ext4w.ErrShortWrite) {
			t.Fatalf("Close: %v, want ErrShortWrite", err)
		}
		f.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines before ten failed Writers, %d after", before, n)
	}
}
