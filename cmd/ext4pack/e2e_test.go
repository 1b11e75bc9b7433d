package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// TestImageEveryType is issue 2's "done when": a tar holding every entry
// type goes through `ext4pack image`, from a file and from stdin; e2fsck is
// clean, and the kernel's mount reads back every entry as the tar has it.
func TestImageEveryType(t *testing.T) {
	in := oracle.EveryTypeTar(t)
	newest, err := oracle.NewestMtime(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, stdin := range []bool{false, true} {
		name := "file"
		if stdin {
			name = "stdin"
		}
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "rootfs.ext4")
			src := in
			if stdin {
				f, err := os.Open(in)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				old := os.Stdin
				os.Stdin = f
				defer func() { os.Stdin = old }()
				src = "-"
			}
			code, _, stderr := runCLI(t, "image", "--rootfs-tar", src, "--out", out)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			oracle.Fsck(t, out)
			oracle.CompareMount(t, in, out, oracle.CreatedMtime(newest))
		})
	}
}
