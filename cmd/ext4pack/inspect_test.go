package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/internal/oracle"
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
