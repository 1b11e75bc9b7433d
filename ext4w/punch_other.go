//go:build !linux && !windows

package ext4w

import (
	"errors"
	"os"
)

// punchHole is for Linux and Windows; elsewhere zeros are written instead.
func punchHole(f *os.File, off, n int64) error { return errors.ErrUnsupported }

// MarkSparse marks f sparse where files are not sparse unless marked so
// (Windows); here every file is, and it does nothing.
func MarkSparse(f *os.File) error { return nil }
