//go:build !linux

package boottest

import (
	"os"
	"testing"
)

// TestBoot needs Linux: debootstrap, a private mount namespace and Debian's
// packaging tools.
func TestBoot(t *testing.T) {
	if run, why := runDecision(os.Getenv); !run {
		t.Skip(why)
	}
	skipOrFail(t, "the boot test runs on Linux only")
}
