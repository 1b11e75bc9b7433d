package ext4w_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// TestHugeSparseFile writes a 5 GiB file that is almost all holes: past
// large_file's 4 GiB, with extents beyond 2^20 blocks, and cheap because
// the zeros never reach the disk.
func TestHugeSparseFile(t *testing.T) {
	const size = 5 << 30
	marks := map[int64]string{0: "start", 4<<30 + 1: "past 4 GiB", size - 3: "end"}
	img := build(t, func(w *ext4w.Writer) error {
		if err := w.Create("huge", reg(0o644, size)); err != nil {
			return err
		}
		zeros := make([]byte, 1<<20)
		for off := int64(0); off < size; {
			chunk := zeros[:min(int64(len(zeros)), size-off)]
			for at, s := range marks {
				if at >= off && at < off+int64(len(chunk)) {
					chunk = append([]byte(nil), chunk...)
					copy(chunk[at-off:], s)
				}
			}
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			off += int64(len(chunk))
		}
		return nil
	})
	oracle.Fsck(t, img)
	var st syscall.Stat_t
	if err := syscall.Stat(img, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 40<<20 {
		t.Errorf("the image uses %d bytes on disk: holes were written", used)
	}
	out, err := exec.Command("debugfs", "-R", "stat huge", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("Size: %d", int64(size))) {
		t.Errorf("debugfs stat: %v\n%.800s", err, out)
	}
	// Read the marks back through the file's block map (debugfs bmap),
	// rather than dumping 5 GiB of zeros.
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for at, s := range marks {
		out, err := exec.Command("debugfs", "-R", fmt.Sprintf("bmap huge %d", at/4096), img).Output()
		if err != nil {
			t.Fatalf("debugfs bmap: %v", err)
		}
		phys, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil || phys == 0 {
			t.Fatalf("block of offset %d: %q", at, out)
		}
		b := make([]byte, len(s))
		if _, err := f.ReadAt(b, phys*4096+at%4096); err != nil || string(b) != s {
			t.Errorf("at %d: read %q, %v; want %q", at, b, err, s)
		}
	}
}

// TestFileSizeLimit checks the clear error past ext4's 16 TiB file limit.
func TestFileSizeLimit(t *testing.T) {
	build(t, func(w *ext4w.Writer) error {
		err := w.Create("toobig", reg(0o644, 0))
		if err != nil {
			return err
		}
		err = w.Create("toobig", &ext4w.File{Type: ext4w.TypeRegular, Size: 16<<40 + 1})
		if !errors.Is(err, ext4w.ErrInvalid) || !strings.Contains(err.Error(), "16 TiB") {
			t.Errorf("got %v", err)
		}
		return nil
	})
}

// TestResize2fs grows an image the way users do: a bigger file, then
// resize2fs, and e2fsck stays clean.
func TestResize2fs(t *testing.T) {
	resize := needOracleTool(t, "resize2fs")
	img := build(t, func(w *ext4w.Writer) error {
		var errs []error
		for i := 0; i < 300; i++ {
			errs = append(errs, create(w, fmt.Sprintf("d%d/f%d", i%10, i), reg(0o644, 5000), content(fmt.Sprint(i), 5000)))
		}
		return errors.Join(errs...)
	})
	before := oracle.Dumpe2fsHeader(t, img)["Block count"]
	for _, grow := range []string{"+1G", "+20G"} {
		if out, err := exec.Command("truncate", "-s", grow, img).CombinedOutput(); err != nil {
			t.Fatalf("truncate: %v %s", err, out)
		}
		if out, err := exec.Command(resize, img).CombinedOutput(); err != nil {
			t.Fatalf("resize2fs %s: %v\n%s", grow, err, out)
		}
		oracle.Fsck(t, img)
		after := oracle.Dumpe2fsHeader(t, img)["Block count"]
		if a, _ := strconv.Atoi(after); a <= mustAtoi(before) {
			t.Fatalf("resize2fs %s left %s blocks (was %s)", grow, after, before)
		}
		before = after
	}
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func needOracleTool(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is needed as a test oracle and CI must install it (e2fsprogs)", name)
	}
	t.Skipf("%s not installed (install e2fsprogs); CI runs this test", name)
	return ""
}

// TestDirNlink puts more than 65,000 subdirectories in one directory: its
// link count no longer fits and reads 1 (dir_nlink), as the kernel does.
func TestDirNlink(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	img := build(t, func(w *ext4w.Writer) error {
		for i := 0; i < 65010; i++ {
			if err := w.Create(fmt.Sprintf("top/s%05d", i), &ext4w.File{Type: ext4w.TypeDir, Mode: 0o755, Mtime: mtime}); err != nil {
				return err
			}
		}
		return nil
	})
	oracle.Fsck(t, img)
	out, err := exec.Command("debugfs", "-R", "stat top", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Links: 1 ") {
		t.Errorf("debugfs stat top: %v\n%.600s", err, out)
	}
}

// TestLinkLimit checks the clear error past ext4's 65,000 links a file.
func TestLinkLimit(t *testing.T) {
	img := build(t, func(w *ext4w.Writer) error {
		if err := create(w, "f", reg(0o644, 1), []byte{1}); err != nil {
			return err
		}
		for i := 1; i < 65000; i++ {
			if err := w.Link("f", fmt.Sprintf("l/%d", i)); err != nil {
				return err
			}
		}
		err := w.Link("f", "l/65000")
		if !errors.Is(err, ext4w.ErrTooManyLinks) {
			t.Errorf("link 65,001: got %v", err)
		}
		return nil
	})
	oracle.Fsck(t, img)
}

// goldenSHA256 pins the image bytes of goldenContent. It changes only
// when the on-disk layout changes on purpose: then check the new image
// with e2fsck and the mount test, and update it here.
const goldenSHA256 = "3bf71d8d965590c23fd0b3fe5a741daa59e459ec36eef63889b07f23c0b2d0e6"

// TestGoldenImage pins reproducibility: the same input gives the same
// bytes on any machine and GOMAXPROCS.
func TestGoldenImage(t *testing.T) {
	for _, procs := range []int{1, 2, 8} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			goldenImage(t)
		})
	}
}

func goldenImage(t *testing.T) {
	img := build(t, func(w *ext4w.Writer) error {
		var errs []error
		for i := 0; i < 400; i++ {
			f := reg(0o644, i*37)
			if i%5 == 0 {
				f.Xattrs = map[string][]byte{"user.n": []byte(fmt.Sprint(i)), "security.selinux": []byte("system_u:object_r:bin_t:s0\x00")}
			}
			errs = append(errs, create(w, fmt.Sprintf("dir%d/file-%d", i%9, i), f, content(fmt.Sprint(i), i*37)))
		}
		errs = append(errs, w.Create("dir1/link", &ext4w.File{Type: ext4w.TypeSymlink, Mode: 0o777, Linkname: "file-1", Mtime: mtime}),
			w.Link("dir2/file-2", "dir3/hard"))
		return errors.Join(errs...)
	}, ext4w.WithSalt([]byte("golden")))
	oracle.Fsck(t, img)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != goldenSHA256 {
		t.Errorf("image sha256 %s, pinned %s", got, goldenSHA256)
	}
}
