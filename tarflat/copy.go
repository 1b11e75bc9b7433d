package tarflat

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ext4pack/ext4pack/ext4w"
)

// Copy reads every entry from r and writes it to w, then returns what it
// learnt about the tar. It does not close w: the caller may add files
// before it does.
//
// The first error stops it; it is an *EntryError naming the tar entry,
// except for errors of the input stream as a whole. When w runs out of a
// fixed size, Copy reads on to the end, so that w.Close can say how much
// the whole tar needs.
func Copy(w *ext4w.Writer, r *Reader) (Info, error) {
	c := copier{w: w, r: r, t: newTree(), buf: make([]byte, 1<<20)}
	full := w.OutOfSpace()
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			// Hardlinks, whiteouts and dropped entries made no inode of
			// their own, but their mtimes count too.
			w.NoteMtime(r.Newest())
			return c.t.info(c.info), nil
		}
		if err != nil {
			return c.info, err
		}
		c.info.Entries++
		if err := c.apply(e); err != nil {
			var ee *EntryError
			if !errors.As(err, &ee) {
				err = &EntryError{Name: e.Raw, Offset: e.Offset, Err: err}
			}
			return c.info, err
		}
		if !full && w.OutOfSpace() {
			full = true
			r.warn("tar entry %q (at byte %d) does not fit the image size; reading on to count what the whole tar needs", e.Raw, e.Offset)
		}
	}
}

// copier is Copy's state: the tree it mirrors and what it learnt.
type copier struct {
	w    *ext4w.Writer
	r    *Reader
	t    *tree
	buf  []byte
	info Info
}

func (c *copier) apply(e *Entry) error {
	switch e.Op {
	case OpCreate:
		return c.create(e)
	case OpLink:
		return c.link(e)
	case OpRemove:
		err := c.w.Remove(e.Name)
		// A whiteout of a name no earlier entry made is a no-op (SPEC),
		// and so is one under a name that is not a directory.
		if err != nil && !errors.Is(err, ext4w.ErrNotExist) && !errors.Is(err, ext4w.ErrNotDir) {
			return unwrapEntry(err)
		}
		c.t.remove(e.Name)
	}
	return nil
}

func (c *copier) create(e *Entry) error {
	if err := c.checkParent(e.Name); err != nil {
		return err
	}
	if err := c.w.Create(e.Name, &e.File); err != nil {
		return explain(err)
	}
	n := tnode{target: e.File.Linkname}
	switch e.File.Type {
	case ext4w.TypeDir:
		n.kind = kDir
	case ext4w.TypeRegular:
		n.kind = kReg
	case ext4w.TypeSymlink:
		n.kind = kSymlink
	case ext4w.TypeCharDev:
		n.kind = kChar
	case ext4w.TypeBlockDev:
		n.kind = kBlock
	default:
		n.kind = kFifo
	}
	if n.kind == kReg {
		if err := c.data(e, &n); err != nil {
			return err
		}
	}
	c.t.put(e.Name, n)
	return nil
}

// data copies a regular file's data to the image, looking at its first
// bytes for an ELF header and keeping an os-release file's content on the
// way. Nothing else of a file is kept.
func (c *copier) data(e *Entry, n *tnode) error {
	size := e.File.Size
	if size == 0 {
		// ext4w takes no Write for an empty file.
		n.osRead = isOSRelease(e.Name, 0)
		return nil
	}
	var head [elfHeadSize]byte
	h := head[:min(int64(len(head)), size)]
	if _, err := io.ReadFull(c.r, h); err != nil {
		return truncated(err)
	}
	if _, err := c.w.Write(h); err != nil {
		return explain(err)
	}
	n.elf = sniffELF(h, e.File.Mode)
	var keep *bytes.Buffer
	var dst io.Writer = c.w
	if isOSRelease(e.Name, size) {
		keep = bytes.NewBuffer(append([]byte(nil), h...))
		dst = io.MultiWriter(c.w, keep)
	}
	rest := size - int64(len(h))
	got, err := io.CopyBuffer(dst, io.LimitReader(c.r, rest), c.buf)
	c.info.Bytes += int64(len(h)) + got
	if err != nil {
		var ee *EntryError
		if errors.As(err, &ee) {
			return err // the Reader's own, already naming the entry
		}
		return explain(err)
	}
	if got != rest {
		return truncated(io.ErrUnexpectedEOF)
	}
	if keep != nil {
		n.osID, n.osHas = osReleaseID(keep.Bytes())
		n.osRead = true
	}
	return nil
}

func truncated(err error) error {
	var ee *EntryError
	if errors.As(err, &ee) {
		return err
	}
	return badInput("the input ends in the middle of the entry's data (truncated?)")
}

func (c *copier) link(e *Entry) error {
	n, ok := c.t.get(e.Target)
	switch {
	case !ok:
		return fmt.Errorf("hardlink to %q, which no earlier entry made (a hardlink must come after its target)", e.Target)
	case n.kind == kDir:
		return fmt.Errorf("hardlink to directory %q", e.Target)
	}
	if err := c.checkParent(e.Name); err != nil {
		return err
	}
	if err := c.w.Link(e.Target, e.Name); err != nil {
		if errors.Is(err, ext4w.ErrNotExist) {
			return fmt.Errorf("hardlink to %q, which no earlier entry made (a hardlink must come after its target)", e.Target)
		}
		return explain(err)
	}
	// The new name shares the target's inode, so what the tree knows of
	// the target's content holds for it too.
	c.t.put(e.Name, n)
	return nil
}

// checkParent refuses an entry under a non-directory (SPEC), naming it.
func (c *copier) checkParent(name string) error {
	p, n, bad := c.t.nonDirParent(name)
	if !bad {
		return nil
	}
	what := n.kind.String()
	if n.kind == kSymlink {
		what = fmt.Sprintf("symlink (to %q)", n.target)
	}
	return fmt.Errorf("%q is a %s, not a directory, so nothing can go under it", p, what)
}

// explain words ext4w's errors for a tar entry: the entry's name is
// added by the caller, so ext4w's own EntryError layer goes.
func explain(err error) error {
	err = unwrapEntry(err)
	if errors.Is(err, ext4w.ErrNotDir) {
		return fmt.Errorf("a parent of it is not a directory: %w", err)
	}
	return err
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
