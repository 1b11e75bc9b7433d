package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs with options data on dir until the test
// ends, read-only if asked: a small one to fill, or a read-only one,
// which stops root from writing where chmod does not.
func mountTmpfs(t *testing.T, dir, data string, readOnly bool) {
	t.Helper()
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("ext4pack-test", dir, "tmpfs", flags, data); err != nil {
		skipOrFail(t, "mounting a tmpfs: "+err.Error()+" (a container without CAP_SYS_ADMIN?)")
	}
	// Registered after the caller's t.TempDir, so it runs before the
	// directory goes.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting the tmpfs at %s: %v", dir, err)
		}
	})
}
