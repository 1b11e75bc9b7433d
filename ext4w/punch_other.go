//go:build !linux

package ext4w

import (
	"errors"
	"os"
)

// punchHole is Linux-only; elsewhere zeros are written instead.
func punchHole(f *os.File, off, n int64) error { return errors.ErrUnsupported }
