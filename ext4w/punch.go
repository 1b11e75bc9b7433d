package ext4w

import (
	"io"
	"os"
)

// zeroBlocks makes the blocks of s read as zeros again: a hole where the
// output can punch one, else written zeros.
func zeroBlocks(out io.WriterAt, s span) error {
	off, n := int64(s.start)*blockSize, int64(s.end-s.start)*blockSize
	if f, ok := out.(*os.File); ok {
		if punchHole(f, off, n) == nil {
			return nil
		}
	}
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		if _, err := out.WriteAt(zeroBlock[:k], off); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}
