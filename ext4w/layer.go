package ext4w

import (
	"fmt"
	"io"
	"slices"
)

// Layers: a container image is a stack of tars, each a change set over
// the ones below (OCI image-spec, layer.md). The image ext4w writes must
// equal what overlayfs shows over the layers, each extracted the way
// containerd extracts one: a whiteout or an opaque marker acts only on
// the layers below its own, whatever its place in the layer's tar. So the
// Writer remembers, for each inode, the layer that made it or, for a
// directory, last named it (by an entry, or as the parent of one), and
// Whiteout and Opaque spare what the current layer named.

// NewLayer starts the next layer: what was written before is the lower
// layers from now on. Calls before the first NewLayer write layer 0,
// which is a flat tar's only layer.
func (w *Writer) NewLayer() error {
	if err := w.endFile(); err != nil {
		return err
	}
	w.hashString("layer")
	w.layer++
	w.dirCache.id = 0
	return nil
}

// Whiteout applies a whiteout (".wh.NAME") of the current layer: name and
// everything under it, as the lower layers made them, are removed. What
// the current layer itself named stays: a file it made is kept, and a
// directory it named loses only the lower layers' entries under it. A
// name that does not exist, or that sits under something that is not a
// directory, is no error: the whiteout does nothing, and creates nothing.
func (w *Writer) Whiteout(name string) error {
	if err := w.endFile(); err != nil {
		return err
	}
	w.hashString("whiteout")
	w.hashString(name)
	parts, err := splitName(name)
	if err != nil || len(parts) == 0 {
		return entryErr("whiteout", name, ErrBadName)
	}
	parent, i, ok := w.find(parts)
	if !ok {
		return nil
	}
	// A whiteout names nothing of its own layer: the directories above
	// it stay as the layers below made them, and a later whiteout of one
	// of them removes it.
	id := w.nodes.at(parent).dir.ents[i].id
	n := w.nodes.at(id)
	switch {
	case n.layer < w.layer:
		err = w.unlink(parent, i)
	case n.dir != nil:
		err = w.hideLower(id)
	}
	if err != nil {
		return entryErr("whiteout", name, err)
	}
	return nil
}

// Opaque applies an opaque marker (".wh..wh..opq") of the current layer
// in directory name: every entry the lower layers made under it is
// removed, and the directory and what the current layer put in it stay,
// whether the marker came before those entries or after them. A name
// that is not an existing directory is left alone, as for Whiteout.
func (w *Writer) Opaque(name string) error {
	if err := w.endFile(); err != nil {
		return err
	}
	w.hashString("opaque")
	w.hashString(name)
	parts, err := splitName(name)
	if err != nil {
		return entryErr("opaque", name, ErrBadName)
	}
	id := uint32(1)
	if len(parts) > 0 {
		parent, i, ok := w.find(parts)
		if !ok {
			return nil
		}
		id = w.nodes.at(parent).dir.ents[i].id
		if w.nodes.at(id).dir == nil {
			return nil
		}
		w.touchParents(parts)
	}
	// The marker stands in the directory: the layer names it.
	w.nodes.at(id).layer = w.layer
	if err := w.hideLower(id); err != nil {
		return entryErr("opaque", name, err)
	}
	return nil
}

// find looks parts up without making anything: the directory holding
// the last component and its index there.
func (w *Writer) find(parts []string) (parent uint32, i int, ok bool) {
	parent, err := w.parentDir(parts, false)
	if err != nil {
		return 0, 0, false
	}
	i, ok = w.nodes.at(parent).dir.lookup(parts[len(parts)-1])
	return parent, i, ok
}

// touchParents marks the directories above parts as named by the current
// layer, as the directories above an opaque marker or a hardlink's target
// are in an extracted layer.
func (w *Writer) touchParents(parts []string) {
	id := uint32(1)
	for _, p := range parts[:len(parts)-1] {
		d := w.nodes.at(id).dir
		i, _ := d.lookup(p)
		id = d.ents[i].id
		w.nodes.at(id).layer = w.layer
	}
}

// hideLower removes from directory id every entry of the lower layers,
// and does the same in the directories the current layer named in it:
// overlayfs shows nothing from below an opaque directory, at any depth.
func (w *Writer) hideLower(id uint32) error {
	d := w.nodes.at(id).dir
	for i := range d.ents {
		cid := d.ents[i].id
		if cid == 0 {
			continue
		}
		c := w.nodes.at(cid)
		switch {
		case c.layer < w.layer:
			if err := w.unlink(id, i); err != nil {
				return err
			}
		case c.dir != nil:
			if err := w.hideLower(cid); err != nil {
				return err
			}
		}
	}
	w.dirCache.id = 0
	return nil
}

// copyUp gives entry i of directory parent an inode of the current
// layer, when the lower inode it names has other names as well: a layer's
// hardlink to a lower file links to the layer's own copy of it, as
// containerd copies the target up into the layer before linking, and the
// lower file's other names keep the lower inode. The copy's data is read
// back from the output, which must then be an io.ReaderAt (*os.File is).
func (w *Writer) copyUp(parent uint32, i int, name string) (uint32, error) {
	d := w.nodes.at(parent).dir
	oldID := d.ents[i].id
	old := w.nodes.at(oldID)
	if old.links <= 1 {
		old.layer = w.layer
		return oldID, nil
	}
	w.hashString("copy-up")
	n := *old
	n.links, n.layer = 1, w.layer
	n.run0Start, n.run0Len = 0, 0
	if old.ext != nil {
		e := *old.ext
		e.runs = nil
		n.ext = &e
	}
	runs := old.runs()
	id := w.nodes.add(n)
	old.links--
	d.ents[i].id = id
	cp := w.nodes.at(id)
	switch {
	case cp.isLnk() && cp.ext.slowLink != "":
		return id, w.placeBytes(cp, []byte(cp.ext.slowLink), name)
	case cp.isReg() && cp.size > 0:
		return id, w.copyData(id, name, runs)
	}
	return id, nil
}

// copyData writes the data held in runs again as the data of regular
// file id, holes as holes.
func (w *Writer) copyData(id uint32, name string, runs []run) error {
	n := w.nodes.at(id)
	w.cur, w.curName, w.curRemain, w.curBlock = id, name, int64(n.size), 0
	if cap(w.fbuf) == 0 {
		w.fbuf = make([]byte, 0, blockSize)
	}
	if w.counting() {
		// The lower data was never written: count what the copy needs.
		w.noSpace(name, blocksOf(runs))
		w.cur, w.curRemain = 0, 0
		return nil
	}
	ra, ok := w.out.(io.ReaderAt)
	if !ok {
		return w.fail(entryErr("link", name, fmt.Errorf("ext4w: a hardlink to a lower layer's file with several names needs an output that can be read back (io.ReaderAt)")))
	}
	if err := w.data.wait(); err != nil {
		return w.fail(err)
	}
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b run) int { return int(a.logical) - int(b.logical) })
	var buf []byte
	at := int64(0) // bytes of the file written so far
	for _, r := range runs {
		if gap := int64(r.logical)*blockSize - at; gap > 0 {
			if err := w.WriteHole(gap); err != nil {
				return err
			}
			at += gap
		}
		for k := uint64(0); k < uint64(r.len); {
			c := min(uint64(r.len)-k, 256)
			size := min(int64(c)*blockSize, int64(n.size)-at)
			if size <= 0 {
				break
			}
			if cap(buf) < int(size) {
				buf = make([]byte, 256*blockSize)
			}
			b := buf[:size]
			if _, err := ra.ReadAt(b, int64(r.start+k)*blockSize); err != nil {
				return w.fail(entryErr("link", name, fmt.Errorf("ext4w: reading back the lower layer's data: %w", err)))
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
			at += size
			k += c
		}
	}
	if rest := int64(n.size) - at; rest > 0 {
		return w.WriteHole(rest)
	}
	return nil
}

// blocksOf counts the blocks of runs.
func blocksOf(runs []run) uint64 {
	var c uint64
	for _, r := range runs {
		c += uint64(r.len)
	}
	return c
}
