//go:build !ext4pack_portable

package ext4w

import (
	"os"

	"golang.org/x/sys/unix"
)

func punchHole(f *os.File, off, n int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

// MarkSparse marks f sparse where files are not sparse unless marked so
// (Windows); here every file is, and it does nothing.
func MarkSparse(f *os.File) error { return nil }
