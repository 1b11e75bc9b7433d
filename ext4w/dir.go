package ext4w

import "encoding/binary"

// dirent is a name in an in-memory directory. id 0 marks a removed name.
type dirent struct {
	name string
	id   uint32
}

// dir is the in-memory form of a directory: its names in creation order,
// with a map index once it grows, so that lookups stay O(1) and memory
// stays small for the many tiny directories of a rootfs.
type dir struct {
	parent  uint32
	ents    []dirent
	index   map[string]int32
	live    int
	subdirs uint32
}

const dirIndexThreshold = 16

func (d *dir) lookup(name string) (int, bool) {
	if d.index != nil {
		i, ok := d.index[name]
		return int(i), ok
	}
	for i := range d.ents {
		if d.ents[i].id != 0 && d.ents[i].name == name {
			return i, true
		}
	}
	return -1, false
}

func (d *dir) add(name string, id uint32) {
	d.ents = append(d.ents, dirent{name: name, id: id})
	d.live++
	if d.index != nil {
		d.index[name] = int32(len(d.ents) - 1)
	} else if len(d.ents) > dirIndexThreshold {
		d.index = make(map[string]int32, len(d.ents)*2)
		for i, e := range d.ents {
			if e.id != 0 {
				d.index[e.name] = int32(i)
			}
		}
	}
}

func (d *dir) remove(i int) {
	if d.index != nil {
		delete(d.index, d.ents[i].name)
	}
	d.ents[i].id = 0
	d.live--
}

// diskEnt is a directory entry with its final inode number and type.
type diskEnt struct {
	name string
	ino  uint32
	ft   uint8
	hash uint32
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
	b.cur = make([]byte, blockSize)
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
