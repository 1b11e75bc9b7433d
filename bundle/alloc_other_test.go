//go:build !unix

package bundle

import "os"

// allocatedBytes returns the file's size: without st_blocks, holes cannot
// be seen, and holesSupported reports false.
func allocatedBytes(fi os.FileInfo) int64 {
	return fi.Size()
}
