package ext4w

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Output is where the image goes. *os.File satisfies it. The Writer
// writes only blocks that are not all zeros, so a fresh file stays sparse.
type Output interface {
	io.WriterAt
	Truncate(size int64) error
}

// Writer writes an ext4 image in one pass. File data streams to its final
// blocks as it arrives; everything else is laid out at Close, once the
// counts are known. Like archive/tar.Writer: Create, then Write the
// entry's data, and Close at the end. A Writer is not safe for concurrent
// use.
type Writer struct {
	out Output
	opt options
	// fixed is the geometry when WithSize fixed it; nil when the size
	// comes from the content at Close.
	fixed *geometry

	nodes nodeTable // by internal id; 0 is unused, 1 is the root
	data  stream
	sum   hash.Hash // of every header and byte, for the default UUID

	// The regular file being written.
	cur       uint32
	curName   string
	curRemain int64
	curBlock  uint64 // next logical block
	fbuf      []byte // the start of a block Write has not completed yet
	runKind   uint8  // the run hashRun is in: 0 none, 1 data, 2 holes
	runLen    uint64

	dirCache struct {
		path string
		id   uint32
		// touched: the directories on path were marked as named by
		// the current layer on the way.
		touched bool
	}
	// layer counts NewLayer calls: 0 for a flat tar.
	layer       uint32
	newest      timestamp
	haveNewest  bool
	freed       []span // blocks of replaced files, free again
	needBlocks  uint64 // data blocks that did not fit a fixed size
	firstFailed string

	// err is sticky: once set, every later call returns it. It is set by
	// I/O errors and short writes, never by a bad entry, so a caller may
	// skip a bad entry and go on.
	err    error
	closed bool
}

// NewWriter returns a Writer that writes an image to out, which should be
// empty.
func NewWriter(out Output, opts ...Option) (*Writer, error) {
	o := defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if f, ok := out.(*os.File); ok {
		// Only Windows needs it (punch_windows.go), and a file system
		// without sparse files refuses it: the image is right either
		// way, and holes then cost their zeros.
		_ = MarkSparse(f)
	}
	w := &Writer{out: out, opt: o, sum: sha256.New()}
	w.data = newStream(out, worstBackupRegion)
	if o.size != 0 {
		blocks := uint64(o.size / blockSize)
		g := newGeometry(blocks, w.inodeTarget(blocks, 0))
		w.fixed = &g
		w.data.region = g.backupRegion()
		// Keep room for the metadata every image of this size needs, so
		// that running out shows while the data streams.
		reserve := g.fixedOverhead() - uint64(len(backupGroups(g.groups)))*g.backupRegion() + 1
		if reserve >= g.blocks {
			return nil, fmt.Errorf("ext4w: size %d is too small for the filesystem's own metadata", o.size)
		}
		w.data.limit = g.blocks - reserve
	}
	w.nodes.add(inode{})
	w.nodes.add(inode{mode: sIFDIR | 0o755, links: 2, dir: &dir{parent: 1}, defaultTime: true})
	w.hashString("ext4w v1")
	w.sum.Write(o.salt)
	return w, nil
}

// inodeTarget is the inode count for an image of blocks blocks holding
// entries entries: 1.5x the entries and the reserved inodes, and at least
// one per 16 KiB, unless WithInodes fixed it.
func (w *Writer) inodeTarget(blocks, entries uint64) uint64 {
	if w.opt.inodes != 0 {
		return w.opt.inodes
	}
	n := firstIno + ceilDiv(entries*3, 2)
	if r := blocks * blockSize / 16384; r > n {
		n = r
	}
	return n
}

func (w *Writer) hashString(s string) {
	var l [4]byte
	binary.LittleEndian.PutUint32(l[:], uint32(len(s)))
	w.sum.Write(l[:])
	io.WriteString(w.sum, s)
}

func (w *Writer) hashU64(vs ...uint64) {
	var b [8]byte
	for _, v := range vs {
		binary.LittleEndian.PutUint64(b[:], v)
		w.sum.Write(b[:])
	}
}

// splitName validates a slash-separated name relative to the root and
// returns its components; "." is the root itself.
func splitName(name string) ([]string, error) {
	if name == "." {
		return nil, nil
	}
	if name == "" || name[0] == '/' {
		return nil, ErrBadName
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || len(p) > maxNameLen || strings.IndexByte(p, 0) >= 0 {
			return nil, ErrBadName
		}
	}
	return parts, nil
}

// Create adds an entry. Missing parent directories are created as
// root:root 0755 directories with the default time. An existing entry of
// the same name is replaced, as tar -x replaces it, except that a
// directory over a directory only takes the new metadata and keeps its
// children. For a regular file, Write then takes exactly f.Size bytes.
func (w *Writer) Create(name string, f *File) error {
	if err := w.endFile(); err != nil {
		return err
	}
	parts, err := splitName(name)
	if err != nil {
		return entryErr("create", name, err)
	}
	n, err := w.newInode(f)
	if err != nil {
		return entryErr("create", name, err)
	}
	w.hashEntry(name, f)
	n.layer = w.layer
	if len(parts) == 0 { // the root
		if !n.isDir() {
			return entryErr("create", name, ErrNotDir)
		}
		w.updateDir(1, n)
		return nil
	}
	parent, err := w.parentDir(parts, true)
	if err != nil {
		return entryErr("create", name, err)
	}
	base := parts[len(parts)-1]
	d := w.nodes.at(parent).dir
	if i, ok := d.lookup(base); ok {
		old := d.ents[i].id
		if n.isDir() && w.nodes.at(old).isDir() {
			w.updateDir(old, n)
			return nil
		}
		if err := w.unlink(parent, i); err != nil {
			return entryErr("create", name, err)
		}
	}
	id := w.nodes.len()
	if n.isDir() {
		n.dir = &dir{parent: parent}
		n.links = 2
		d.subdirs++
	} else {
		n.links = 1
	}
	if n.isLnk() && len(f.Linkname) > fastSymlinkMax {
		if err := w.placeBytes(&n, []byte(f.Linkname), name); err != nil {
			return err
		}
	}
	w.nodes.add(n)
	d.add(strings.Clone(base), id)
	if n.isReg() && f.Size > 0 {
		w.cur, w.curName, w.curRemain, w.curBlock = id, name, f.Size, 0
		if cap(w.fbuf) == 0 {
			w.fbuf = make([]byte, 0, blockSize)
		}
	}
	return nil
}

// newInode validates f and returns its in-memory inode.
func (w *Writer) newInode(f *File) (inode, error) {
	typ, _ := f.Type.fileFormat()
	if typ == 0 {
		return inode{}, fmt.Errorf("%w: unknown file type %d", ErrInvalid, f.Type)
	}
	if f.Mode&^0o7777 != 0 {
		return inode{}, fmt.Errorf("%w: mode %#o has bits beyond 07777", ErrInvalid, f.Mode)
	}
	n := inode{mode: typ | uint16(f.Mode), uid: f.Uid, gid: f.Gid}
	switch f.Type {
	case TypeRegular:
		if f.Size < 0 || uint64(f.Size) > maxFileBlocks*blockSize {
			return inode{}, fmt.Errorf("%w: size %d is beyond ext4's 16 TiB file limit", ErrInvalid, f.Size)
		}
		n.size = uint64(f.Size)
	case TypeSymlink:
		if f.Linkname == "" || len(f.Linkname) > maxSymlinkLen || strings.IndexByte(f.Linkname, 0) >= 0 {
			return inode{}, fmt.Errorf("%w: symlink target of %d bytes (1 to %d, no NUL)", ErrInvalid, len(f.Linkname), maxSymlinkLen)
		}
		n.size = uint64(len(f.Linkname))
		if len(f.Linkname) <= fastSymlinkMax {
			n.ext = &inodeExt{link: f.Linkname}
		} else {
			n.ext = &inodeExt{slowLink: f.Linkname}
		}
	case TypeCharDev, TypeBlockDev:
		if f.Devmajor > maxDevMajor || f.Devminor > maxDevMinor {
			return inode{}, fmt.Errorf("%w: device %d:%d (ext4 holds majors below 4096 and minors below 2^20)", ErrInvalid, f.Devmajor, f.Devminor)
		}
		e := n.extra()
		e.dev[0], e.dev[1] = encodeDev(f.Devmajor, f.Devminor)
	}
	xs, err := parseXattrs(f.Xattrs)
	if err != nil {
		return inode{}, err
	}
	if len(xs) > 0 {
		if n.ext == nil {
			n.ext = &inodeExt{}
		}
		n.ext.xattrs = xs
	}
	ts := w.times(f)
	for i, t := range ts {
		n.times[i][0], n.times[i][1] = encodeTime(t)
	}
	w.noteNewest(ts[tMtime])
	return n, nil
}

// times returns atime, ctime, mtime and crtime, each defaulting to mtime.
// A zero time.Time means "no time given" and stays at the epoch.
func (w *Writer) times(f *File) [4]timestamp {
	srcs := [4]time.Time{tAtime: f.Atime, tCtime: f.Ctime, tMtime: f.Mtime, tCrtime: f.Crtime}
	var out [4]timestamp
	for i, src := range srcs {
		if src.IsZero() {
			src = f.Mtime
		}
		if src.IsZero() {
			continue
		}
		ts, ok := clampTime(src)
		if !ok {
			w.opt.warn(fmt.Sprintf("time %v is outside what ext4 holds (1901 to 2446) or in 2310-2378, which e2fsck takes for a time before 1970; clamped", src))
		}
		out[i] = ts
	}
	return out
}

func (w *Writer) hashEntry(name string, f *File) {
	w.hashString(name)
	w.hashU64(uint64(f.Type), uint64(f.Mode), uint64(f.Uid), uint64(f.Gid), uint64(f.Size),
		uint64(f.Devmajor), uint64(f.Devminor))
	for _, t := range []int64{f.Atime.UnixNano(), f.Mtime.UnixNano(), f.Ctime.UnixNano(), f.Crtime.UnixNano()} {
		w.hashU64(uint64(t))
	}
	w.hashString(f.Linkname)
	keys := make([]string, 0, len(f.Xattrs))
	for k := range f.Xattrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.hashString(k)
		w.hashString(string(f.Xattrs[k]))
	}
}

// updateDir gives an existing directory new metadata.
func (w *Writer) updateDir(id uint32, n inode) {
	o := w.nodes.at(id)
	o.mode, o.uid, o.gid, o.times, o.ext = n.mode, n.uid, n.gid, n.times, n.ext
	o.defaultTime = false
	o.layer = w.layer
}

// parentDir resolves the directory holding parts' last component, making
// missing directories when create is set.
func (w *Writer) parentDir(parts []string, create bool) (uint32, error) {
	dirParts := parts[:len(parts)-1]
	path := strings.Join(dirParts, "/")
	// In a layer, the directories an entry is made under are named by
	// that layer too, as an implicit parent is in an extracted layer: an
	// opaque marker later in the layer must not hide them.
	touch := create && w.layer > 0
	if w.dirCache.id != 0 && w.dirCache.path == path && w.nodes.at(w.dirCache.id).dir != nil && (w.dirCache.touched || !touch) {
		return w.dirCache.id, nil
	}
	id := uint32(1)
	for k, p := range dirParts {
		d := w.nodes.at(id).dir
		i, ok := d.lookup(p)
		if !ok {
			if !create {
				return 0, ErrNotExist
			}
			nid := w.nodes.add(inode{mode: sIFDIR | 0o755, links: 2, dir: &dir{parent: id}, defaultTime: true, layer: w.layer})
			d.add(strings.Clone(p), nid)
			d.subdirs++
			id = nid
			continue
		}
		id = d.ents[i].id
		n := w.nodes.at(id)
		if n.dir == nil {
			return 0, &NotDirError{Path: strings.Join(dirParts[:k+1], "/"), Type: n.fileType(), Linkname: w.linkname(n)}
		}
		if touch {
			n.layer = w.layer
		}
	}
	w.dirCache.path, w.dirCache.id, w.dirCache.touched = path, id, touch
	return id, nil
}

// unlink removes entry i of directory parent, freeing what no other name
// holds; a directory goes with everything under it.
func (w *Writer) unlink(parent uint32, i int) error {
	d := w.nodes.at(parent).dir
	id := d.ents[i].id
	d.remove(i)
	n := w.nodes.at(id)
	if n.dir != nil {
		d.subdirs--
		for j := range n.dir.ents {
			if n.dir.ents[j].id != 0 {
				if err := w.unlink(id, j); err != nil {
					return err
				}
			}
		}
		w.dirCache.id = 0
	}
	n.links--
	if n.links > 0 && n.dir == nil {
		return nil
	}
	return w.release(id)
}

// release frees a dead inode's data blocks; they become holes again so
// that the old bytes do not survive in the image.
func (w *Writer) release(id uint32) error {
	n := w.nodes.at(id)
	if rs := n.runs(); len(rs) > 0 {
		if err := w.data.wait(); err != nil {
			return w.fail(err)
		}
		for _, r := range rs {
			s := span{r.start, r.start + uint64(r.len)}
			w.freed = append(w.freed, s)
			if err := zeroBlocks(w.out, s); err != nil {
				return w.fail(err)
			}
		}
	}
	*n = inode{} // mode 0 marks it dead
	return nil
}

// Link adds newname as another name of the existing non-directory
// oldname, as a tar hardlink does.
func (w *Writer) Link(oldname, newname string) error {
	if err := w.endFile(); err != nil {
		return err
	}
	w.hashString("link")
	w.hashString(oldname)
	w.hashString(newname)
	oldParts, err := splitName(oldname)
	if err != nil {
		return entryErr("link", newname, fmt.Errorf("target %q: %w", oldname, err))
	}
	newParts, err := splitName(newname)
	if err != nil || len(newParts) == 0 {
		return entryErr("link", newname, ErrBadName)
	}
	target, err := w.lookup(oldParts)
	if err != nil {
		// A target under a non-directory does not exist either.
		return entryErr("link", newname, fmt.Errorf("target %q: %w", oldname, ErrNotExist))
	}
	if w.nodes.at(target).dir != nil {
		return entryErr("link", newname, fmt.Errorf("target %q: %w", oldname, ErrIsDir))
	}
	if w.nodes.at(target).layer < w.layer {
		parent, i, _ := w.find(oldParts)
		w.touchParents(oldParts)
		if target, err = w.copyUp(parent, i, oldname); err != nil {
			return err
		}
	}
	if w.nodes.at(target).links >= maxLinks {
		return entryErr("link", newname, fmt.Errorf("%w: %q already has %d names", ErrTooManyLinks, oldname, maxLinks))
	}
	parent, err := w.parentDir(newParts, true)
	if err != nil {
		return entryErr("link", newname, err)
	}
	base := newParts[len(newParts)-1]
	d := w.nodes.at(parent).dir
	if i, ok := d.lookup(base); ok {
		if d.ents[i].id == target {
			return nil
		}
		if strings.HasPrefix(strings.Join(oldParts, "/"), strings.Join(newParts, "/")+"/") {
			// Replacing the directory would remove the target itself, as
			// tar -x cannot do either.
			return entryErr("link", newname, fmt.Errorf("%w: it is a directory that holds the target %q", ErrExist, oldname))
		}
		if err := w.unlink(parent, i); err != nil {
			return entryErr("link", newname, err)
		}
	}
	w.nodes.at(target).links++
	d.add(strings.Clone(base), target)
	return nil
}

// Remove deletes name and, for a directory, everything under it. It is
// how whiteouts are applied.
func (w *Writer) Remove(name string) error {
	if err := w.endFile(); err != nil {
		return err
	}
	w.hashString("remove")
	w.hashString(name)
	parts, err := splitName(name)
	if err != nil || len(parts) == 0 {
		return entryErr("remove", name, ErrBadName)
	}
	parent, err := w.parentDir(parts, false)
	if err != nil {
		return entryErr("remove", name, err)
	}
	i, ok := w.nodes.at(parent).dir.lookup(parts[len(parts)-1])
	if !ok {
		return entryErr("remove", name, ErrNotExist)
	}
	if err := w.unlink(parent, i); err != nil {
		return entryErr("remove", name, err)
	}
	return nil
}

// lookup finds the inode id a path names.
func (w *Writer) lookup(parts []string) (uint32, error) {
	if len(parts) == 0 {
		return 1, nil
	}
	parent, err := w.parentDir(parts, false)
	if err != nil {
		return 0, err
	}
	i, ok := w.nodes.at(parent).dir.lookup(parts[len(parts)-1])
	if !ok {
		return 0, ErrNotExist
	}
	return w.nodes.at(parent).dir.ents[i].id, nil
}

// Write writes data of the current regular file. Blocks of zeros become
// holes.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.canWrite(int64(len(p))); err != nil {
		return 0, err
	}
	total := len(p)
	// Complete a partial block first, then take whole blocks straight
	// from p, and keep the tail for the next call: data is copied once,
	// into the stream's batch.
	if len(w.fbuf) > 0 {
		k := min(len(p), blockSize-len(w.fbuf))
		w.fbuf = append(w.fbuf, p[:k]...)
		p = p[k:]
		if len(w.fbuf) == blockSize {
			if err := w.placeBlocks(w.fbuf); err != nil {
				return total - len(p), err
			}
			w.fbuf = w.fbuf[:0]
		}
	}
	if k := len(p) &^ (blockSize - 1); k > 0 {
		if err := w.placeBlocks(p[:k]); err != nil {
			return total - len(p), err
		}
		p = p[k:]
	}
	w.fbuf = append(w.fbuf, p...)
	w.curRemain -= int64(total)
	return total, w.endData()
}

// canWrite checks that n more bytes of the current regular file may
// come: a file is open, and they do not go past its size.
func (w *Writer) canWrite(n int64) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	if n < 0 || w.cur == 0 || n > w.curRemain {
		name := w.curName
		if w.cur == 0 {
			name = "(no regular file open)"
		}
		return entryErr("write", name, ErrWriteTooLong)
	}
	return nil
}

// endData finishes the current file once all its bytes came.
func (w *Writer) endData() error {
	if w.curRemain > 0 {
		return nil
	}
	if len(w.fbuf) > 0 {
		w.fbuf = append(w.fbuf, zeroBlock[:blockSize-len(w.fbuf)]...)
		if err := w.placeBlocks(w.fbuf); err != nil {
			return err
		}
		w.fbuf = w.fbuf[:0]
	}
	w.endRunHash()
	w.cur = 0
	return nil
}

// WriteHole writes n zero bytes of the current regular file as a hole:
// whole blocks of it are never stored, nor even looked at. It gives the
// same image as writing the zeros, whatever the sizes of the calls, so
// a sparse tar member costs its data, not its size.
func (w *Writer) WriteHole(n int64) error {
	if err := w.canWrite(n); err != nil {
		return err
	}
	w.curRemain -= n
	// Complete a partial block with zeros, pass over whole blocks, and
	// keep the zeros of a last partial block for the data after them.
	if len(w.fbuf) > 0 {
		k := int(min(n, int64(blockSize-len(w.fbuf))))
		w.fbuf = append(w.fbuf, zeroBlock[:k]...)
		n -= int64(k)
		if len(w.fbuf) == blockSize {
			if err := w.placeBlocks(w.fbuf); err != nil {
				return err
			}
			w.fbuf = w.fbuf[:0]
		}
	}
	if blocks := n / blockSize; blocks > 0 {
		w.hashRun(true, uint64(blocks*blockSize))
		w.curBlock += uint64(blocks)
		n -= blocks * blockSize
	}
	w.fbuf = append(w.fbuf, zeroBlock[:n]...)
	return w.endData()
}

var zeroBlock [blockSize]byte

// placeBlocks places whole blocks of the current file. Blocks of zeros
// are skipped (holes); runs of data blocks are allocated and written.
func (w *Writer) placeBlocks(b []byte) error {
	n := w.nodes.at(w.cur)
	for i := 0; i < len(b); {
		zero := bytes.Equal(b[i:i+blockSize], zeroBlock[:])
		j := i + blockSize
		for j < len(b) && bytes.Equal(b[j:j+blockSize], zeroBlock[:]) == zero {
			j += blockSize
		}
		w.hashRun(zero, uint64(j-i))
		if zero {
			w.curBlock += uint64((j - i) / blockSize)
		} else if err := w.placeRun(n, b[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// hashRun feeds the identity hash a file's layout as runs of holes and of
// data (whose bytes the stream digests), merged across Write calls so
// that the hash does not depend on how the data was chunked. Holes are
// counted, not hashed, so huge sparse files cost little.
func (w *Writer) hashRun(zero bool, n uint64) {
	kind := uint8(1)
	if zero {
		kind = 2
	}
	if kind != w.runKind {
		w.endRunHash()
		w.runKind = kind
	}
	w.runLen += n
}

func (w *Writer) endRunHash() {
	if w.runKind != 0 {
		w.hashU64(uint64(w.runKind), w.runLen)
	}
	w.runKind, w.runLen = 0, 0
}

// placeRun allocates blocks for p at the current logical block and writes
// it.
func (w *Writer) placeRun(n *inode, p []byte) error {
	for len(p) > 0 {
		want := uint64(len(p) / blockSize)
		start, got, ok := uint64(0), uint64(0), false
		if !w.counting() {
			start, got, ok = w.data.alloc(want)
		}
		if !ok {
			w.noSpace(w.curName, want)
			w.curBlock += want
			return nil
		}
		n.addRun(uint32(w.curBlock), start, got)
		w.data.write(start, p[:got*blockSize])
		p = p[got*blockSize:]
		w.curBlock += got
	}
	return nil
}

// placeBytes stores a slow symlink's target in data blocks.
func (w *Writer) placeBytes(n *inode, p []byte, name string) error {
	buf := make([]byte, ceilDiv(uint64(len(p)), blockSize)*blockSize)
	copy(buf, p)
	start, got, ok := uint64(0), uint64(0), false
	if !w.counting() {
		start, got, ok = w.data.alloc(uint64(len(buf) / blockSize))
	}
	if !ok {
		w.noSpace(name, 1)
		return nil
	}
	n.addRun(0, start, got)
	w.data.write(start, buf)
	return nil
}

// noSpace records that a fixed size ran out. From then on nothing more
// is written: the Writer only counts what the rest needs, so that Close
// can say how much is needed in all.
func (w *Writer) noSpace(name string, blocks uint64) {
	if w.firstFailed == "" {
		w.firstFailed = name
	}
	w.needBlocks += blocks
}

// OutOfSpace reports whether the content no longer fits the fixed size.
// The Writer then only counts, and Close returns a *SizeError.
func (w *Writer) OutOfSpace() bool { return w.counting() }

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// endFile checks that the previous regular file got all its bytes.
func (w *Writer) endFile() error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if w.cur != 0 && w.curRemain > 0 {
		name, remain := w.curName, w.curRemain
		w.cur, w.fbuf = 0, w.fbuf[:0]
		w.endRunHash()
		return w.fail(entryErr("write", name, fmt.Errorf("%w: %d bytes missing", ErrShortWrite, remain)))
	}
	return nil
}

// counting reports whether the Writer ran out of a fixed size and only
// counts now.
func (w *Writer) counting() bool { return w.firstFailed != "" }

// Exists reports whether name exists in the image being written.
func (w *Writer) Exists(name string) bool {
	parts, err := splitName(name)
	if err != nil {
		return false
	}
	_, err = w.lookup(parts)
	return err == nil
}

// NewestMtime is the newest mtime of the entries created so far (the zero
// Time if none), the default time of entries the caller makes itself.
func (w *Writer) NewestMtime() time.Time {
	if !w.haveNewest {
		return time.Time{}
	}
	return time.Unix(w.newest.sec, int64(w.newest.nsec)).UTC()
}

// nodeChunk is how many inodes one slab of the node table holds. Growing
// the table never copies the inodes already made, so it never needs twice
// their memory, as one big slice would while it grows.
const nodeChunk = 4096

// nodeTable holds the in-memory inodes by id.
type nodeTable struct {
	chunks [][]inode
	n      uint32
}

func (t *nodeTable) at(id uint32) *inode { return &t.chunks[id/nodeChunk][id%nodeChunk] }

func (t *nodeTable) len() uint32 { return t.n }

// add appends n and returns its id.
func (t *nodeTable) add(n inode) uint32 {
	if t.n%nodeChunk == 0 {
		t.chunks = append(t.chunks, make([]inode, nodeChunk))
	}
	id := t.n
	*t.at(id) = n
	t.n++
	return id
}

// NoteMtime folds t, the mtime of a tar header that made no inode of its
// own (a hardlink, a whiteout, a dropped entry), into the newest mtime,
// the default time of the entries the writer makes itself: SPEC takes the
// newest mtime of the whole tar. It is hashed, since it shapes the image.
func (w *Writer) NoteMtime(t time.Time) {
	if t.IsZero() {
		return
	}
	ts, _ := clampTime(t)
	w.hashString("mtime")
	w.hashU64(uint64(ts.sec), uint64(ts.nsec))
	w.noteNewest(ts)
}

func (w *Writer) noteNewest(ts timestamp) {
	if !w.haveNewest || ts.sec > w.newest.sec || (ts.sec == w.newest.sec && ts.nsec > w.newest.nsec) {
		w.newest, w.haveNewest = ts, true
	}
}
