package tarflat

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
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
// mistaken for a tar error: archive/tar passes it through unchanged.
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

// streamErr turns an error from archive/tar or below into a message that
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
	case errors.Is(err, tar.ErrHeader):
		return badInput("corrupt tar header (%w)", err)
	}
	// archive/tar's other errors (a sparse map that references missing
	// data, a bad PAX record) are all about malformed input.
	return badInput("%w", err)
}

// headerProblem explains why blk, the first block of a header archive/tar
// refused, is not a tar header: a checksum that does not match is by far
// the most common case, and worth saying exactly.
func headerProblem(blk []byte) string {
	if len(blk) < blockSize {
		return ""
	}
	if bytes.Equal(blk, make([]byte, blockSize)) {
		return "a zero block (the end-of-archive marker) is followed by more data"
	}
	// The checksum (POSIX ustar, "chksum") is the sum of the header's
	// bytes with its own 8-byte field at 148 counted as spaces, written in
	// octal. Some old tars summed signed chars; either is accepted.
	field := bytes.Trim(blk[148:156], " \x00")
	want, err := strconv.ParseUint(string(field), 8, 32)
	if err != nil {
		return "not a tar header (its checksum field is not an octal number)"
	}
	var unsigned, signed int64
	for i, b := range blk[:blockSize] {
		if i >= 148 && i < 156 {
			b = ' '
		}
		unsigned += int64(b)
		signed += int64(int8(b))
	}
	if int64(want) != unsigned && int64(want) != signed {
		return fmt.Sprintf("bad header checksum: the header says %d, its bytes sum to %d", want, unsigned)
	}
	return ""
}
