package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// TestSparseTars takes the full-fidelity issue's big files through the
// whole pipeline: GNU tar's sparse members of a 5 GiB file that is almost
// all holes and of a file with thousands of extents, and a directory of
// 100,000 names. Each image passes e2fsck and the kernel mount comparison,
// and holes stay holes.
func TestSparseTars(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	gnutar := requireTool(t, "tar", "tar")
	src := t.TempDir()
	huge := filepath.Join(src, "huge")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int64{0, 4<<30 + 1, 5<<30 - 3} {
		if _, err := f.WriteAt([]byte("data"), at); err != nil {
			t.Fatal(err)
		}
	}
	f.Truncate(5 << 30)
	f.Close()
	// Every other block written: 3,000 extents.
	g, err := os.Create(filepath.Join(src, "extents"))
	if err != nil {
		t.Fatal(err)
	}
	blk := make([]byte, 4096)
	for i := 0; i < 6000; i += 2 {
		copy(blk, fmt.Sprintf("block %d", i))
		if _, err := g.WriteAt(blk, int64(i)*4096); err != nil {
			t.Fatal(err)
		}
	}
	g.Truncate(6000 * 4096)
	g.Close()
	in := filepath.Join(t.TempDir(), "sparse.tar")
	cmd := exec.Command(gnutar, "--sparse", "--format=posix", "--numeric-owner", "-C", src, "-cf", in, "huge", "extents")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	img := filepath.Join(t.TempDir(), "sparse.ext4")
	if code, _, stderr := runCLI(t, "image", "--rootfs-tar", in, "--out", img); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(img, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 64<<20 {
		t.Errorf("the image takes %d bytes on disk: holes were written", st.Blocks*512)
	}
	judgeImage(t, in, img)
}

// TestHugeDirectoryTar: 100,000 names in one directory, read back by the
// kernel through the two-level htree.
func TestHugeDirectoryTar(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	b := oracle.NewTar(t)
	b.Dir("big", 0o755)
	for i := 0; i < 100000; i++ {
		b.File(fmt.Sprintf("big/file-number-%06d", i), 0o644, nil)
	}
	in := b.Write()
	img := filepath.Join(t.TempDir(), "big.ext4")
	if code, _, stderr := runCLI(t, "image", "--rootfs-tar", in, "--out", img); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	judgeImage(t, in, img)
}
