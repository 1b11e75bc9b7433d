package main

import (
	"archive/tar"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// TestInspectImage reads an image back with the pure-Go reader, with an
// empty PATH so that no external program could be run.
func TestInspectImage(t *testing.T) {
	in := oracle.EveryTypeTar(t)
	img := filepath.Join(t.TempDir(), "rootfs.ext4")
	if code, _, se := runCLI(t, "image", "--rootfs-tar", in, "--out", img); code != 0 {
		t.Fatal(se)
	}
	t.Setenv("PATH", "")
	long := "/names/" + strings.Repeat("n", 250) + "-255b"
	code, out, stderr := runCLI(t, "inspect", img, "/usr/bin/passwd", "/dev/null", "/links/fast59", long)
	for _, want := range []string{
		"features: has_journal ext_attr resize_inode dir_index filetype extent 64bit flex_bg sparse_super large_file huge_file dir_nlink extra_isize metadata_csum",
		"/usr/bin/passwd\tregular\t4755\t0:0\t",
		"/dev/null\tchar\t0666\t0:0\t0\t",
		"device 1:3",
		"/links/fast59\tsymlink\t0777",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	// The reader may fail on a 255-byte name, but inspect must not crash:
	// it reports the path and exits 1.
	if code != 0 && !strings.Contains(stderr, "names/") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "inspect", img, "/no/such/file"); code != 1 || !strings.Contains(stderr, "/no/such/file") {
		t.Errorf("missing path: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "inspect"); code != 2 {
		t.Errorf("no argument: exit %d, want 2", code)
	}
	if code, _, stderr := runCLI(t, "inspect", in); code != 1 || !strings.Contains(stderr, "not an ext4") {
		t.Errorf("a tar: exit %d, stderr %q", code, stderr)
	}
}

// TestInspectHostileBundle is issue 15's hostile bundle: a few hundred
// bytes of zstd holding a manifest that claims a 15 TiB rootfs and a
// rootfs.ext4 member of 15 TiB of holes (GNU sparse 1.0, its map one empty
// entry at the end). inspect used to hash the zeros for hours; it is
// refused at once now, since the image has no ext4 superblock, and
// nothing is left in the temporary directory. The time bound guards
// against the hang; it is no benchmark.
func TestInspectHostileBundle(t *testing.T) {
	const size = int64(15) << 40
	manifest := []byte(fmt.Sprintf(`{"name":"evil","arch":"x86_64","rootfs":"rootfs.ext4","rootfs_size_bytes":%d,"rootfs_sha256":"%064d","created_by":"ext4pack x"}`+"\n", size, 0))
	sparseMap := tartest.Pad(fmt.Sprintf("1\n%d\n0\n", size))
	mtime := oracle.DefaultMtime.Unix()
	zst := oracle.Zstd(t, slices.Concat(
		tartest.Raw{Name: "manifest.json", Typeflag: tar.TypeReg, Size: int64(len(manifest)), Mtime: mtime}.Block(), tartest.Pad(manifest),
		tartest.RawPAX(tar.TypeXHeader, "GNU.sparse.major", "1", "GNU.sparse.minor", "0",
			"GNU.sparse.name", "rootfs.ext4", "GNU.sparse.realsize", strconv.FormatInt(size, 10)),
		tartest.Raw{Name: "GNUSparseFile.0/rootfs.ext4", Typeflag: tar.TypeReg, Size: int64(len(sparseMap)), Mtime: mtime}.Block(), sparseMap,
		tartest.End(),
	))
	path := writeTemp(t, "evil.tar.zst", zst)

	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var code int
	var stdout, stderr string
	took := withTimeout(t, 30*time.Second, "inspect of a 15 TiB bundle of holes", func() {
		code, stdout, stderr = runCLI(t, "inspect", path)
	})
	t.Logf("%d-byte bundle, refused in %v: %s", len(zst), took, strings.TrimSpace(stderr))
	if code != 1 || !strings.Contains(stderr, "not an ext4 image") || strings.Contains(stdout, "manifest") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and no ext4 superblock", code, stdout, stderr)
	}
	if took > 5*time.Second {
		t.Errorf("refused after %v", took)
	}
	requireEmpty(t, tmp)
}
