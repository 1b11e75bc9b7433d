package tarflat

import (
	"errors"
	"fmt"
	"io"
)

// ErrFormat is wrapped by every error about input that is not a valid
// tar stream: truncated, corrupt, not a tar at all, or compressed in a way
// that does not decode.
var ErrFormat = errors.New("tarflat: not a valid tar stream")

// formatError is an error about the input that wraps ErrFormat without
// saying so in its text: "tarflat: not a valid tar stream" in the middle
// of every message would only be noise.
type formatError struct {
	msg string
	err error
}

func (e *formatError) Error() string   { return e.msg }
func (e *formatError) Unwrap() []error { return []error{ErrFormat, e.err} }

// badInput returns a formatError; %w in format wraps as in fmt.Errorf.
func badInput(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &formatError{msg: err.Error(), err: err}
}

// EntryError records an error and the tar entry that caused it, like
// os.PathError. Every rejection of the input is one.
type EntryError struct {
	// Name is the entry's name as the tar has it; empty when the header
	// itself could not be read.
	Name string
	// Offset is the byte offset, in the uncompressed stream, of the
	// entry's first header block: its PAX or GNU extended header where it
	// has one. -1 if unknown.
	Offset int64
	Err    error
}

func (e *EntryError) Error() string {
	switch {
	case e.Name == "" && e.Offset >= 0:
		return fmt.Sprintf("tar header at byte %d: %v", e.Offset, e.Err)
	case e.Offset >= 0:
		return fmt.Sprintf("tar entry %q (at byte %d): %v", e.Name, e.Offset, e.Err)
	}
	return fmt.Sprintf("tar entry %q: %v", e.Name, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// decodeError marks an error of the decompressor, so that it is not
// mistaken for a tar error.
type decodeError struct {
	codec string // "gzip" or "zstd"
	err   error
}

func (e *decodeError) Error() string {
	if errors.Is(e.err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("the %s stream is truncated (%v)", e.codec, e.err)
	}
	return fmt.Sprintf("the %s stream is corrupt: %v", e.codec, e.err)
}

func (e *decodeError) Unwrap() error { return e.err }

// readError marks an error reading the input itself (EIO, a closed pipe).
type readError struct{ err error }

func (e *readError) Error() string { return "reading the input: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// streamErr turns an error from the tar stream or below into a message that
// says what is wrong with the input. where says what was being read ("the
// entry's data", "the header").
func streamErr(err error, where string) error {
	var de *decodeError
	var re *readError
	switch {
	case errors.As(err, &de):
		return badInput("%w", de)
	case errors.As(err, &re):
		return re
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badInput("the input ends in the middle of %s (truncated?)", where)
	case errors.Is(err, ErrFormat):
		return err
	}
	return badInput("%w", err)
}

// headerProblem explains why blk, a block where a header belongs, is not
// a tar header: a checksum that does not match is by far the most common
// case, and worth saying exactly.
func headerProblem(blk []byte) string {
	if isZeroBlock(blk) {
		return "a zero block (the end-of-archive marker) is followed by more data"
	}
	want, unsigned, signed, err := checksum(blk)
	switch {
	case err != nil:
		return "not a tar header (its checksum field is not an octal number)"
	case want != unsigned && want != signed:
		return fmt.Sprintf("bad header checksum: the header says %d, its bytes sum to %d", want, unsigned)
	}
	return ""
}
