// ext4pack_portable gives Linux this file too, so that its tests run the
// code macOS and the BSDs run (make test).

//go:build (!linux && !windows) || (linux && ext4pack_portable)

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
