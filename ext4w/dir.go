package ext4w

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"sync"
)

// dirent is a name in an in-memory directory. id 0 marks a removed name.
type dirent struct {
	name string
	id   uint32
	// hash is the name's htree hash plus one, 0 until Close computes it;
	// it fills what would be padding, and saves hashing twice.
	hash uint32
}

// dir is the in-memory form of a directory: its names in creation order
// and, once it grows, an open-addressing index of them, so that lookups
// stay O(1) while memory stays small: a slot is 4 bytes, where a Go map
// entry costs ten times that.
type dir struct {
	parent  uint32
	subdirs uint32
	live    int
	ents    []dirent
	slots   []uint32 // ent index + 1, 0 for an empty slot; nil while small
	indexed bool     // laid out as an htree, at Close
}

const dirIndexThreshold = 16

// nameSeed seeds the index's hash. It only orders lookups in memory, never
// the output, so a per-process seed is fine.
var nameSeed = maphash.MakeSeed()

func (d *dir) lookup(name string) (int, bool) {
	if d.slots == nil {
		for i := range d.ents {
			if d.ents[i].id != 0 && d.ents[i].name == name {
				return i, true
			}
		}
		return -1, false
	}
	mask := uint64(len(d.slots) - 1)
	for i := maphash.String(nameSeed, name) & mask; ; i = (i + 1) & mask {
		s := d.slots[i]
		if s == 0 {
			return -1, false
		}
		// Removed names keep their slot and are skipped here.
		if e := &d.ents[s-1]; e.id != 0 && e.name == name {
			return int(s - 1), true
		}
	}
}

func (d *dir) add(name string, id uint32) {
	d.ents = append(d.ents, dirent{name: name, id: id})
	d.live++
	switch {
	case d.slots != nil && 2*len(d.ents) <= len(d.slots):
		d.insert(len(d.ents) - 1)
	case len(d.ents) > dirIndexThreshold:
		// Rebuild at a load of at most a quarter, so probes stay short
		// until the next doubling.
		d.slots = make([]uint32, 1<<bits.Len(uint(4*len(d.ents))))
		for i := range d.ents {
			if d.ents[i].id != 0 {
				d.insert(i)
			}
		}
	}
}

func (d *dir) insert(i int) {
	mask := uint64(len(d.slots) - 1)
	for j := maphash.String(nameSeed, d.ents[i].name) & mask; ; j = (j + 1) & mask {
		if d.slots[j] == 0 {
			d.slots[j] = uint32(i + 1)
			return
		}
	}
}

func (d *dir) remove(i int) {
	d.ents[i].id = 0
	d.live--
}

// diskEnt is a directory entry with its final inode number and type.
type diskEnt struct {
	name string
	ino  uint32
	ft   uint8
	hash uint32  // dirent.hash: the htree hash plus one, 0 if not known
	ent  *dirent // where to keep the hash for the next pass
}

// Directory block geometry (directory.rst).
const (
	direntHdrSize = 8
	dirTailSize   = 12
	dirLeafSpace  = blockSize - dirTailSize
)

func direntSize(nameLen int) int { return direntHdrSize + pad4(nameLen) }

// dirBuilder packs entries into leaf blocks, each ending in a checksum
// tail. The last entry of a block stretches its rec_len to the tail.
type dirBuilder struct {
	blocks [][]byte
	cur    []byte
	off    int
	last   int // offset of the last entry in cur, -1 if none
}

func (b *dirBuilder) startBlock() {
	b.cur = newBlock()
	b.blocks = append(b.blocks, b.cur)
	b.off = 0
	b.last = -1
}

// fits reports whether an entry with an n-byte name fits in the block.
func (b *dirBuilder) fits(n int) bool {
	return b.cur != nil && b.off+direntSize(n) <= dirLeafSpace
}

func (b *dirBuilder) put(name string, ino uint32, ft uint8) {
	if !b.fits(len(name)) {
		b.finishBlock()
		b.startBlock()
	}
	le := binary.LittleEndian
	o := b.off
	le.PutUint32(b.cur[o:], ino)
	le.PutUint16(b.cur[o+4:], uint16(direntSize(len(name))))
	b.cur[o+6] = uint8(len(name))
	b.cur[o+7] = ft
	copy(b.cur[o+8:], name)
	b.last = o
	b.off += direntSize(len(name))
}

// finishBlock stretches the last entry to the tail; a block with no entry
// gets one empty entry (inode 0) spanning it, as the kernel makes them.
func (b *dirBuilder) finishBlock() {
	if b.cur == nil {
		return
	}
	le := binary.LittleEndian
	if b.last < 0 {
		le.PutUint16(b.cur[4:], dirLeafSpace)
	} else {
		le.PutUint16(b.cur[b.last+4:], uint16(dirLeafSpace-b.last))
	}
	b.cur = nil
}

// setDirTail writes the checksum tail of a leaf block
// (ext4_dirblock_csum: crc32c of everything before the tail).
func setDirTail(blk []byte, seed uint32) {
	le := binary.LittleEndian
	t := blk[dirLeafSpace:]
	le.PutUint32(t[0:], 0)
	le.PutUint16(t[4:], dirTailSize)
	t[6] = 0
	t[7] = dirTailFileType
	le.PutUint32(t[8:], crc32c(seed, blk[:dirLeafSpace]))
}

// linearFits reports whether "." and ".." and ents fit one block.
func linearFits(ents []diskEnt) bool {
	n := direntSize(1) + direntSize(2)
	for i := range ents {
		n += direntSize(len(ents[i].name))
		if n > dirLeafSpace {
			return false
		}
	}
	return true
}

// buildLinear lays out a one-block directory, or minBlocks blocks with
// the rest empty (lost+found is made with 4, as mke2fs makes it).
func buildLinear(self, parent uint32, ents []diskEnt, minBlocks int) [][]byte {
	var b dirBuilder
	b.startBlock()
	b.put(".", self, ftDir)
	b.put("..", parent, ftDir)
	for i := range ents {
		b.put(ents[i].name, ents[i].ino, ents[i].ft)
	}
	b.finishBlock()
	for len(b.blocks) < minBlocks {
		b.startBlock()
		b.finishBlock()
	}
	return b.blocks
}

// Directory blocks are laid out twice at Close (once to count, once to
// write) and dropped at once: a pool spares the collector the churn,
// which at a million entries was most of what Close allocated.
var blockPool = sync.Pool{New: func() any { return new([blockSize]byte) }}

// newBlock returns a zeroed block from the pool.
func newBlock() []byte {
	b := blockPool.Get().(*[blockSize]byte)
	clear(b[:])
	return b[:]
}

// freeBlocks returns blocks newBlock gave to the pool; the caller keeps
// no reference to them.
func freeBlocks(bs [][]byte) {
	for _, b := range bs {
		if cap(b) >= blockSize {
			blockPool.Put((*[blockSize]byte)(b[:blockSize]))
		}
	}
}
