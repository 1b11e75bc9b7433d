package inflate

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is. Every error the readers return for bad input
// matches one of them, or io.ErrUnexpectedEOF for input that stops too
// soon; errors of the underlying reader are returned as they are.
var (
	// ErrCorrupt: the DEFLATE data breaks RFC 1951 (an invalid code, a
	// distance before the start of the stream, a bad block header).
	ErrCorrupt = errors.New("inflate: corrupt DEFLATE data")
	// ErrHeader: a gzip member's header is not one (RFC 1952 2.3).
	ErrHeader = errors.New("inflate: invalid gzip header")
	// ErrChecksum: a gzip member's CRC-32 or ISIZE does not match the
	// data decoded.
	ErrChecksum = errors.New("inflate: gzip checksum mismatch")
	// ErrTrailingData: a complete gzip member is followed by bytes that do
	// not start another member. gzip -d, too, only warns about them
	// ("trailing garbage ignored"); compress/gzip fails.
	ErrTrailingData = errors.New("inflate: data after a gzip member is not another member")
)

// CorruptError says what is wrong with the DEFLATE data, and about where.
type CorruptError struct {
	Offset int64  // the input byte where it was found (about: the bit buffer reads ahead)
	Reason string // what is wrong
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("inflate: corrupt DEFLATE data near input byte %d: %s", e.Offset, e.Reason)
}

// Is makes a CorruptError match ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
