package ext4w

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// closeState is what Close works out before writing the metadata.
type closeState struct {
	geo       geometry
	inodes    uint64 // s_inodes_count
	maxIno    uint32 // the highest inode number in use
	byIno     []uint32
	lpf       uint32 // id of the lost+found Close made, 0 if the tar had one
	uuid      [16]byte
	hseed     [4]uint32
	seed      uint32 // metadata_csum seed
	sbTime    uint32
	jnlBlocks [60]byte // the journal inode's i_block, backed up in the superblock
	entries   uint64   // live inodes but the root

	// Per-inode counts, by id.
	dirBlocks []uint32

	// Allocations.
	free         freeList
	used         []span
	journal      []run
	journalTree  uint64
	blockBitmaps uint64 // first of groups' block bitmaps, then inode bitmaps
	inodeTables  []uint64
	dind         uint64
	xattrBlocks  map[string]*sharedXattr
	xattrOrder   []string
}

type sharedXattr struct {
	block   uint64
	refs    uint32
	content []byte
}

// Close lays out and writes all the metadata: directories, inode tables,
// bitmaps, group descriptors, superblocks and their backups, the journal
// and lost+found. The output is then a complete image, its size set.
// When a fixed size was too small, it returns a *SizeError.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	ferr := w.endFile()
	w.closed = true
	// The background writer stops on every path, errors included, or a
	// program that makes many images leaks it and its buffers.
	err := w.data.wait()
	w.data.stop()
	if ferr != nil {
		return ferr
	}
	if err != nil {
		return w.fail(err)
	}
	err = w.finish()
	if err != nil {
		w.err = err
	}
	return err
}

// Abort gives the image up, after an error of the caller's: the
// background writer stops and nothing more is written, so the output
// holds garbage. Later calls, Close included, return ErrClosed. A program
// that makes many images calls Close or Abort on each, or leaks the
// writer's goroutine and buffers.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.data.wait()
	w.data.stop()
}

func (w *Writer) finish() error {
	var cs closeState
	w.makeLostFound(&cs)
	w.resolveTimes()
	w.renumber(&cs)
	w.identity(&cs)
	if err := w.countDirBlocks(&cs); err != nil {
		return err
	}
	for {
		if err := w.size(&cs); err != nil {
			return err
		}
		err := w.allocate(&cs)
		if err == nil {
			break
		}
		if !errors.Is(err, errNoRoom) {
			return err
		}
		// An automatic size whose free space was too fragmented for
		// the metadata: try one MiB more.
		cs.geo.blocks += (1 << 20) / blockSize
	}
	return w.writeMeta(&cs)
}

// makeLostFound adds /lost+found unless the content has one.
func (w *Writer) makeLostFound(cs *closeState) {
	root := w.nodes.at(1).dir
	if _, ok := root.lookup("lost+found"); ok {
		return
	}
	id := w.nodes.add(inode{mode: sIFDIR | 0o700, links: 2, dir: &dir{parent: 1}, defaultTime: true})
	root.add("lost+found", id)
	root.subdirs++
	cs.lpf = id
}

// resolveTimes gives the entries the writer made the default time.
func (w *Writer) resolveTimes() {
	var t timestamp
	if w.opt.defaultTime != nil {
		t, _ = clampTime(*w.opt.defaultTime)
	} else if w.haveNewest {
		t = w.newest
	}
	times := encodeTimes(t)
	for id := uint32(1); id < w.nodes.len(); id++ {
		if n := w.nodes.at(id); n.defaultTime {
			n.times = times
		}
	}
}

// renumber gives live inodes their final numbers in creation order:
// the root is 2, a lost+found made here 11 (as mke2fs makes it), the rest
// follow without gaps.
func (w *Writer) renumber(cs *closeState) {
	next := uint32(firstIno)
	if cs.lpf != 0 {
		w.nodes.at(cs.lpf).ino = next
		next++
	}
	w.nodes.at(1).ino = inoRoot
	for id := uint32(2); id < w.nodes.len(); id++ {
		n := w.nodes.at(id)
		if n.mode == 0 || id == cs.lpf {
			continue
		}
		n.ino = next
		next++
	}
	cs.maxIno = next - 1
	cs.byIno = make([]uint32, next)
	for id := uint32(1); id < w.nodes.len(); id++ {
		n := w.nodes.at(id)
		if n.mode != 0 {
			cs.byIno[n.ino] = id
			if id != 1 {
				cs.entries++
			}
			if n.dir != nil {
				n.links = 2 + n.dir.subdirs
			}
		}
	}
}

// identity derives the UUID and hash seed from everything written, unless
// options fixed them, and the checksum seed from the UUID.
func (w *Writer) identity(cs *closeState) {
	w.hashString("options")
	w.hashU64(uint64(w.opt.size), w.opt.inodes, uint64(w.opt.sbTime))
	w.hashString(w.opt.label)
	w.sum.Write(w.data.sum.Sum(nil))
	sum := w.sum.Sum(nil)
	if w.opt.uuid != nil {
		cs.uuid = *w.opt.uuid
	} else {
		copy(cs.uuid[:], sum[:16])
		cs.uuid[6] = cs.uuid[6]&0x0F | 0x80 // RFC 9562 version 8: custom
		cs.uuid[8] = cs.uuid[8]&0x3F | 0x80 // RFC 4122 variant
	}
	var hs [16]byte
	if w.opt.hashSeed != nil {
		hs = *w.opt.hashSeed
	} else {
		h := sha256.Sum256(append(sum, "hash seed"...))
		copy(hs[:], h[:16])
	}
	for i := range cs.hseed {
		cs.hseed[i] = binary.LittleEndian.Uint32(hs[4*i:])
	}
	cs.seed = crc32c(^uint32(0), cs.uuid[:])
	cs.sbTime = uint32(w.opt.sbTime)
}

// dirEntries lists a directory's live names with final inode numbers.
func (w *Writer) dirEntries(d *dir) []diskEnt {
	out := make([]diskEnt, 0, d.live)
	for i := range d.ents {
		e := &d.ents[i]
		if e.id == 0 {
			continue
		}
		n := w.nodes.at(e.id)
		_, ft := fileTypeOf(n.mode)
		out = append(out, diskEnt{name: e.name, ino: n.ino, ft: ft, hash: e.hash, ent: e})
	}
	return out
}

func fileTypeOf(mode uint16) (uint16, uint8) {
	switch mode & 0xF000 {
	case sIFREG:
		return sIFREG, ftRegular
	case sIFDIR:
		return sIFDIR, ftDir
	case sIFLNK:
		return sIFLNK, ftSymlink
	case sIFCHR:
		return sIFCHR, ftChrdev
	case sIFBLK:
		return sIFBLK, ftBlkdev
	case sIFIFO:
		return sIFIFO, ftFifo
	case sIFSOCK:
		return sIFSOCK, ftSock
	}
	return 0, ftUnknown
}

// buildDir lays out directory id's blocks with checksums.
func (w *Writer) buildDir(cs *closeState, id uint32) (blocks [][]byte, indexed bool, err error) {
	n := w.nodes.at(id)
	parent := w.nodes.at(n.dir.parent).ino
	ents := w.dirEntries(n.dir)
	seed := inodeSeed(cs.seed, n.ino, 0)
	if id == cs.lpf {
		bs := buildLinear(n.ino, parent, ents, 4)
		for _, b := range bs {
			setDirTail(b, seed)
		}
		return bs, false, nil
	}
	blocks, indexed, err = dirBlocks(n.ino, parent, ents, &cs.hseed, seed)
	if err != nil {
		err = entryErr("close", w.pathOf(id), err)
	}
	return blocks, indexed, err
}

// pathOf names directory id by walking up its parents, for messages.
func (w *Writer) pathOf(id uint32) string {
	var parts []string
	for id != 1 {
		p := w.nodes.at(id).dir.parent
		for _, e := range w.nodes.at(p).dir.ents {
			if e.id == id {
				parts = append([]string{e.name}, parts...)
				break
			}
		}
		id = p
	}
	return "/" + strings.Join(parts, "/")
}

func (w *Writer) countDirBlocks(cs *closeState) error {
	cs.dirBlocks = make([]uint32, w.nodes.len())
	for id := uint32(1); id < w.nodes.len(); id++ {
		if w.nodes.at(id).dir != nil && w.nodes.at(id).mode != 0 {
			bs, _, err := w.buildDir(cs, id)
			if err != nil {
				return err
			}
			cs.dirBlocks[id] = uint32(len(bs))
			freeBlocks(bs)
		}
	}
	return nil
}

// metaBlocks counts the blocks Close allocates beyond the geometry's
// fixed overhead: directories, extent trees, xattr blocks and the resize
// inode's dind block, assuming directories land contiguously.
func (w *Writer) metaBlocks(cs *closeState) uint64 {
	total := uint64(1) // dind
	seen := map[string]bool{}
	for id := uint32(1); id < w.nodes.len(); id++ {
		n := w.nodes.at(id)
		if n.mode == 0 {
			continue
		}
		if n.dir != nil {
			total += uint64(cs.dirBlocks[id])
			total += extentTreeBlocks(int(ceilDiv(uint64(cs.dirBlocks[id]), maxRunLen)))
		} else {
			total += extentTreeBlocks(len(extents(n.runs())))
		}
		if _, blk := splitInline(n.xattrs()); len(blk) > 0 {
			k := string(xattrBlockContent(blk))
			if !seen[k] {
				seen[k] = true
				total++
			}
		}
	}
	return total
}

// dataBlocksUsed counts the blocks file data holds now.
func (w *Writer) dataBlocksUsed() uint64 {
	var n uint64
	for _, s := range w.data.spans {
		n += s.end - s.start
	}
	for _, s := range w.freed {
		n -= s.end - s.start
	}
	return n
}

// size settles the geometry: the fixed size, or 1.5x what the content
// needs, rounded up to a MiB, at least MinSize and cs.geo.blocks.
func (w *Writer) size(cs *closeState) error {
	if w.fixed == nil {
		cs.geo = w.fitGeometry(cs, 1.5, max(cs.geo.blocks, w.data.next))
	} else {
		// The inode count follows the size asked for, before a short last
		// group is dropped, as mke2fs counts it.
		asked := uint64(w.opt.size / blockSize)
		cs.geo = newGeometry(asked, w.inodeTarget(asked, cs.entries))
		if w.counting() {
			return w.sizeError(w.fitGeometry(cs, 1, 0))
		}
	}
	cs.inodes = cs.geo.groups * cs.geo.inodesPer
	if w.opt.inodes > cs.inodes {
		// A group holds at most 32768 inodes (one bitmap block).
		return fmt.Errorf("ext4w: %d inodes do not fit an image of %d MiB: it holds at most %d",
			w.opt.inodes, cs.geo.blocks*blockSize>>20, cs.inodes)
	}
	if cs.inodes < uint64(cs.maxIno) {
		return &SizeError{Err: ErrTooManyInodes, NeedInodes: uint64(cs.maxIno), HaveInodes: cs.inodes}
	}
	if cs.inodes >= 1<<32 {
		return fmt.Errorf("ext4w: %d inodes is more than ext4 holds", cs.inodes)
	}
	return nil
}

// fitGeometry finds the smallest geometry, in whole MiB and at least
// minBlocks, whose blocks are factor times what the content uses.
func (w *Writer) fitGeometry(cs *closeState, factor float64, minBlocks uint64) geometry {
	const mib = (1 << 20) / blockSize
	data := w.dataBlocksUsed() + w.needBlocks
	meta := w.metaBlocks(cs)
	blocks := max(uint64(MinSize/blockSize), ceilDiv(minBlocks, mib)*mib)
	for {
		target := w.inodeTarget(blocks, cs.entries)
		g := newGeometry(blocks, target)
		if g.blocks < blocks { // a short last group was dropped: grow
			blocks = ceilDiv(blocks+1, mib) * mib
			continue
		}
		if g.groups*g.inodesPer < target {
			// A group holds at most 32768 inodes: more groups.
			blocks = ceilDiv(target, blocksPerGroup) * blocksPerGroup
			continue
		}
		want := ceilDiv(uint64(float64(data+meta+g.fixedOverhead())*factor), mib) * mib
		if want <= blocks {
			return g
		}
		blocks = want
	}
}

func (w *Writer) sizeError(g geometry) error {
	return &SizeError{Err: ErrNoSpace, NeedBytes: int64(g.blocks) * blockSize, HaveBytes: w.opt.size,
		FirstFailed: w.firstFailed}
}

// freeList hands out free blocks lowest first.
type freeList struct {
	spans []span
	first int
}

// take returns n blocks, in as few pieces as it can: the first span that
// holds them all, else pieces from the lowest spans.
func (f *freeList) take(n uint64, contiguous bool) ([]span, bool) {
	for i := f.first; i < len(f.spans); i++ {
		s := &f.spans[i]
		if s.end-s.start >= n {
			out := []span{{s.start, s.start + n}}
			s.start += n
			f.advance()
			return out, true
		}
	}
	if contiguous {
		return nil, false
	}
	var out []span
	for i := f.first; i < len(f.spans) && n > 0; i++ {
		s := &f.spans[i]
		k := min(n, s.end-s.start)
		if k == 0 {
			continue
		}
		out = append(out, span{s.start, s.start + k})
		s.start += k
		n -= k
	}
	f.advance()
	return out, n == 0
}

func (f *freeList) advance() {
	for f.first < len(f.spans) && f.spans[f.first].start == f.spans[f.first].end {
		f.first++
	}
}

// mergeSpans sorts and merges overlapping or touching spans.
func mergeSpans(s []span) []span {
	sort.Slice(s, func(i, j int) bool { return s[i].start < s[j].start })
	out := s[:0]
	for _, x := range s {
		if x.start == x.end {
			continue
		}
		if k := len(out); k > 0 && x.start <= out[k-1].end {
			out[k-1].end = max(out[k-1].end, x.end)
			continue
		}
		out = append(out, x)
	}
	return out
}

var errNoRoom = errors.New("no room")

// allocate places every piece of metadata in the free space.
func (w *Writer) allocate(cs *closeState) error {
	g := &cs.geo
	cs.journal, cs.journalTree, cs.xattrOrder = nil, 0, nil
	var fixed []span
	for _, bg := range backupGroups(g.groups) {
		fixed = append(fixed, span{bg * blocksPerGroup, bg*blocksPerGroup + g.backupRegion()})
	}
	dataUsed := append([]span(nil), w.data.spans...)
	if k := len(dataUsed); k > 0 && dataUsed[k-1].end > g.blocks {
		return w.noRoom(cs)
	}
	used := mergeSpans(append(append([]span(nil), fixed...), dataUsed...))
	var free []span
	at := uint64(0)
	for _, u := range used {
		if u.start > at {
			free = append(free, span{at, u.start})
		}
		at = max(at, u.end)
	}
	if at < g.blocks {
		free = append(free, span{at, g.blocks})
	}
	free = mergeSpans(append(free, w.freed...))
	cs.free = freeList{spans: free}
	cs.used = used
	// Freed blocks are inside the data spans: take them out of "used".
	cs.used = subtractSpans(cs.used, mergeSpans(append([]span(nil), w.freed...)))

	take := func(n uint64, contiguous bool) ([]span, error) {
		s, ok := cs.free.take(n, contiguous)
		if !ok {
			return nil, errNoRoom
		}
		cs.used = append(cs.used, s...)
		return s, nil
	}
	one := func() (uint64, error) {
		s, err := take(1, true)
		if err != nil {
			return 0, err
		}
		return s[0].start, nil
	}
	fail := func(err error) error {
		if errors.Is(err, errNoRoom) {
			return w.noRoom(cs)
		}
		return err
	}
	// The journal, in as few extents as the free space allows.
	js, err := take(g.journal, false)
	if err != nil {
		return fail(err)
	}
	for _, s := range js {
		cs.journal = appendRun(cs.journal, uint32(logicalEnd(cs.journal)), s.start, s.end-s.start)
	}
	if t := extentTreeBlocks(len(extents(cs.journal))); t > 0 {
		s, err := take(t, true)
		if err != nil {
			return fail(err)
		}
		cs.journalTree = s[0].start
	}
	// Bitmaps: all block bitmaps, then all inode bitmaps, as flex_bg
	// packs them.
	bm, err := take(2*g.groups, true)
	if err != nil {
		return fail(err)
	}
	cs.blockBitmaps = bm[0].start
	cs.inodeTables = make([]uint64, g.groups)
	for i := range cs.inodeTables {
		s, err := take(g.itableBlocks, true)
		if err != nil {
			return fail(err)
		}
		cs.inodeTables[i] = s[0].start
	}
	if cs.dind, err = one(); err != nil {
		return fail(err)
	}
	// Directories, extent trees, xattr blocks.
	cs.xattrBlocks = map[string]*sharedXattr{}
	for id := uint32(1); id < w.nodes.len(); id++ {
		n := w.nodes.at(id)
		if n.mode == 0 {
			continue
		}
		n.tree, n.xattrBlock = 0, 0
		if n.dir != nil {
			s, err := take(uint64(cs.dirBlocks[id]), false)
			if err != nil {
				return fail(err)
			}
			var rs []run
			for _, x := range s {
				rs = appendRun(rs, uint32(logicalEnd(rs)), x.start, x.end-x.start)
			}
			n.setRuns(rs)
		}
		if t := extentTreeBlocks(len(extents(n.runs()))); t > 0 {
			s, err := take(t, true)
			if err != nil {
				return fail(err)
			}
			n.tree = uint32(s[0].start)
		}
		if _, blk := splitInline(n.xattrs()); len(blk) > 0 {
			content := xattrBlockContent(blk)
			k := string(content)
			sx := cs.xattrBlocks[k]
			if sx == nil {
				b, err := one()
				if err != nil {
					return fail(err)
				}
				sx = &sharedXattr{block: b, content: content}
				cs.xattrBlocks[k] = sx
				cs.xattrOrder = append(cs.xattrOrder, k)
			}
			sx.refs++
			n.xattrBlock = uint32(sx.block)
		}
	}
	cs.used = mergeSpans(cs.used)
	return nil
}

// noRoom reports that the metadata did not fit: the caller grows an
// automatic size; a fixed one is too small.
func (w *Writer) noRoom(cs *closeState) error {
	if w.fixed == nil {
		return errNoRoom
	}
	if w.firstFailed == "" {
		w.firstFailed = "(filesystem metadata at close)"
	}
	g := w.fitGeometry(cs, 1, 0)
	if g.blocks <= w.fixed.blocks {
		// Fragmented free space: ask for one more group's worth.
		g = w.fitGeometry(cs, 1, w.fixed.blocks+blocksPerGroup)
	}
	return w.sizeError(g)
}

func logicalEnd(rs []run) uint64 {
	if len(rs) == 0 {
		return 0
	}
	l := rs[len(rs)-1]
	return uint64(l.logical) + uint64(l.len)
}

// subtractSpans removes the blocks of b (merged) from a (merged).
func subtractSpans(a, b []span) []span {
	var out []span
	j := 0
	for _, x := range a {
		cur := x.start
		for j < len(b) && b[j].end <= cur {
			j++
		}
		for k := j; k < len(b) && b[k].start < x.end; k++ {
			if b[k].start > cur {
				out = append(out, span{cur, b[k].start})
			}
			cur = max(cur, b[k].end)
		}
		if cur < x.end {
			out = append(out, span{cur, x.end})
		}
	}
	return out
}
