package tarflat

import (
	"errors"
	"fmt"
	"io"

	"github.com/ext4pack/ext4pack/ext4w"
)

// Stats counts what Copy wrote.
type Stats struct {
	Entries int64 // tar entries read
	Bytes   int64 // file data bytes
}

// Copy reads every entry from r and writes it to w. A whiteout for a name
// that no earlier entry made is a no-op. The first error stops it; it
// names the tar entry.
func Copy(w *ext4w.Writer, r *Reader) (Stats, error) {
	var st Stats
	buf := make([]byte, 1<<20)
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		if err != nil {
			return st, err
		}
		st.Entries++
		wrap := func(err error) error {
			var ee *EntryError
			if errors.As(err, &ee) {
				return err
			}
			return &EntryError{Name: e.Raw, Offset: e.Offset, Err: err}
		}
		switch e.Op {
		case OpCreate:
			if err := w.Create(e.Name, &e.File); err != nil {
				return st, wrap(unwrapEntry(err))
			}
			if e.File.Type == ext4w.TypeRegular && e.File.Size > 0 {
				n, err := io.CopyBuffer(w, io.LimitReader(r, e.File.Size), buf)
				st.Bytes += n
				if err != nil {
					return st, wrap(unwrapEntry(err))
				}
				if n != e.File.Size {
					return st, wrap(fmt.Errorf("%w: the input ends in the middle of the entry's data (truncated?)", ErrFormat))
				}
			}
		case OpLink:
			if err := w.Link(e.Target, e.Name); err != nil {
				if errors.Is(err, ext4w.ErrNotExist) {
					return st, wrap(fmt.Errorf("hardlink to %q, which no earlier entry made", e.Target))
				}
				return st, wrap(unwrapEntry(err))
			}
		case OpRemove:
			if err := w.Remove(e.Name); err != nil && !errors.Is(err, ext4w.ErrNotExist) {
				return st, wrap(unwrapEntry(err))
			}
		}
	}
}

// unwrapEntry drops ext4w's own EntryError layer: the tar entry's name is
// the one users know.
func unwrapEntry(err error) error {
	var ee *ext4w.EntryError
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}
