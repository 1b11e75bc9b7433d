package tarflat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

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
	c := newCopier(w)
	if err := c.copy(r); err != nil {
		return c.info, err
	}
	return c.finish(), nil
}

// Layers flattens a container image's layers into one ext4w.Writer,
// oldest first, as overlayfs shows them: each layer's whiteouts and
// opaque markers act on the layers below it, wherever they stand in the
// layer, and a hardlink may name a file of any lower layer (OCI
// image-spec, layer.md). Nothing is extracted: each layer streams
// straight into the image.
type Layers struct {
	c copier
}

// NewLayers returns a Layers that writes to w. Like Copy, it does not
// close w.
func NewLayers(w *ext4w.Writer) *Layers {
	return &Layers{c: newCopier(w)}
}

// Add reads the next layer from r to its end. r must be new: Add reads
// it as an image layer, whose whiteouts are not warned about. Errors are
// as Copy's.
func (l *Layers) Add(r *Reader) error {
	if r.started {
		return errors.New("tarflat: Layers.Add needs a Reader that has not started")
	}
	r.layer = true
	if err := l.c.w.NewLayer(); err != nil {
		return err
	}
	return l.c.copy(r)
}

// Info is what the layers so far tell about the image, as Copy's Info.
func (l *Layers) Info() Info { return l.c.finish() }

func newCopier(w *ext4w.Writer) copier {
	return copier{w: w, elves: map[uint32]elfInfo{}, kept: map[uint32][]byte{}, full: w.OutOfSpace()}
}

// copy applies every entry of r.
func (c *copier) copy(r *Reader) error {
	c.r = r
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			// Hardlinks, whiteouts and dropped entries made no inode of
			// their own, but their mtimes count too.
			c.w.NoteMtime(r.Newest())
			return nil
		}
		if err != nil {
			return err
		}
		c.info.Entries++
		if err := c.apply(e); err != nil {
			var ee *EntryError
			if !errors.As(err, &ee) {
				err = &EntryError{Name: e.Raw, Offset: e.Offset, Err: err}
			}
			return err
		}
		if !c.full && c.w.OutOfSpace() {
			c.full = true
			r.warn("tar entry %q (at byte %d) does not fit the image size; reading on to count what the whole tar needs", e.Raw, e.Offset)
		}
	}
}

// copier is Copy's state. What it keeps of files is small and only for
// Info: the ELF machine of executables and the content of the few small
// files Info reads (os-release, inittab, rcS; see keepContent), keyed by
// ext4w's inode identity, so that hardlinks share it and a replaced file
// loses it. The namespace itself lives in ext4w alone.
type copier struct {
	w     *ext4w.Writer
	r     *Reader
	info  Info
	elves map[uint32]elfInfo
	kept  map[uint32][]byte
	// usrBin lists the ELF executables made under usr/bin, in tar order.
	usrBin []namedID
	full   bool // the image ran out of its fixed size
}

type namedID struct {
	name string
	id   uint32
}

func (c *copier) apply(e *Entry) error {
	switch e.Op {
	case OpCreate:
		return c.create(e)
	case OpLink:
		return c.link(e)
	case OpOpaque:
		return unwrapEntry(c.w.Opaque(e.Name))
	case OpRemove:
		if c.r.layer {
			return unwrapEntry(c.w.Whiteout(e.Name))
		}
		err := c.w.Remove(e.Name)
		// A whiteout of a name no earlier entry made is a no-op (SPEC),
		// and so is one under a name that is not a directory.
		if err != nil && !errors.Is(err, ext4w.ErrNotExist) && !errors.Is(err, ext4w.ErrNotDir) {
			return unwrapEntry(err)
		}
	}
	return nil
}

func (c *copier) create(e *Entry) error {
	if err := c.w.Create(e.Name, &e.File); err != nil {
		return unwrapEntry(err)
	}
	if e.File.Type == ext4w.TypeRegular {
		return c.data(e)
	}
	return nil
}

// data copies a regular file's data to the image, looking at its first
// bytes for an ELF header and keeping the content of the files Info reads
// on the way. Nothing else of a file is kept.
func (c *copier) data(e *Entry) error {
	size := e.File.Size
	var head [elfHeadSize]byte
	h := head[:min(int64(len(head)), size)]
	if _, err := io.ReadFull(c.r, h); err != nil {
		return truncated(err)
	}
	if len(h) > 0 {
		if _, err := c.w.Write(h); err != nil {
			return unwrapEntry(err)
		}
	}
	var keep *bytes.Buffer
	if keepContent(e.Name, size) {
		keep = bytes.NewBuffer(append([]byte(nil), h...))
	}
	c.info.Bytes += int64(len(h))
	// The rest goes from the read buffer straight to the image, and
	// holes as holes: a sparse member costs its data, not its size.
	s := c.r.s
	for s.pos < s.size {
		if n := s.hole(); n > 0 {
			if err := c.w.WriteHole(n); err != nil {
				return unwrapEntry(err)
			}
			s.skipHole(n)
			c.info.Bytes += n
			continue
		}
		b, err := s.peek()
		if err != nil {
			return c.r.dataErr(err)
		}
		if _, err := c.w.Write(b); err != nil {
			return unwrapEntry(err)
		}
		if keep != nil {
			keep.Write(b)
		}
		c.info.Bytes += int64(len(b))
		s.done(len(b))
	}
	elf := sniffELF(h, e.File.Mode)
	if !elf.ok && keep == nil {
		return nil
	}
	st, err := c.w.Lstat(e.Name)
	if err != nil {
		return unwrapEntry(err)
	}
	if elf.ok {
		c.elves[st.ID] = elf
		if strings.HasPrefix(e.Name, "usr/bin/") {
			c.usrBin = append(c.usrBin, namedID{e.Name, st.ID})
		}
	}
	if keep != nil {
		c.kept[st.ID] = keep.Bytes()
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
	err := c.w.Link(e.Target, e.Name)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ext4w.ErrNotExist) && c.r.layer:
		return fmt.Errorf("hardlink to %q, which nothing in this layer or the layers below made, or a whiteout removed", e.Target)
	case errors.Is(err, ext4w.ErrNotExist):
		return fmt.Errorf("hardlink to %q, which no earlier entry made (a hardlink must come after its target)", e.Target)
	case errors.Is(err, ext4w.ErrIsDir):
		return fmt.Errorf("hardlink to directory %q", e.Target)
	}
	return unwrapEntry(err)
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
