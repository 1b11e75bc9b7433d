//go:build unix

package bundle

import (
	"os"
	"syscall"
)

// allocatedBytes returns the space a file takes on disk: st_blocks counts
// 512-byte units on every Unix.
func allocatedBytes(fi os.FileInfo) int64 {
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}
