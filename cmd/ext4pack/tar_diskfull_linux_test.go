package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// TestImageDiskFull writes an image with 30 MiB of data into a 20 MiB
// tmpfs: ext4pack must say the device is full, name the output, exit 1
// and leave nothing there.
func TestImageDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "mounting a small tmpfs to fill needs root")
	}
	mnt := t.TempDir()
	mountTmpfs(t, mnt, "size=20m,mode=0755", false)
	in := tartest.Write(t, tartest.File("big", 0o644, oracle.Content("big", 30<<20)))
	eachInput(t, func(t *testing.T, stdin bool) {
		out := filepath.Join(mnt, "rootfs.ext4")
		var code int
		var stderr string
		if stdin {
			f, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			code, _, stderr, _, _ = runCLIStdin(t, f, "image", "--rootfs-tar", "-", "--out", out)
		} else {
			code, _, stderr = runCLI(t, "image", "--rootfs-tar", in, "--out", out)
		}
		t.Log(strings.TrimSpace(stderr))
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if !strings.Contains(stderr, "writing "+out+": no space left on device") {
			t.Errorf("the message does not say %q", "writing "+out+": no space left on device")
		}
		requireEmpty(t, mnt)
		// The space is free again for the next run.
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err == nil && int64(st.Bfree)*st.Bsize < 19<<20 {
			t.Errorf("the tmpfs has %d bytes free after the failure, want it all back", int64(st.Bfree)*st.Bsize)
		}
	})
}
