package ext4w

// check_inode_test.go: the self-check's inode pass, like e2fsck's pass 1:
// inode checksums, fields per file type, extent trees, in-inode and
// block xattrs, and the reserved inodes (resize, journal).

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// ckInodeSeed is ext4_inode_csum_seed: crc32c(fs seed, ino, generation).
func (c *checker) ckInodeSeed(ino, gen uint32) uint32 {
	return ckCRC(c.seed, le32(ino), le32(gen))
}

// inodeChecksumOK checks ext4_inode_csum: the slot with both checksum
// fields read as zero. The high half only counts when i_extra_isize
// reaches it.
func (c *checker) inodeChecksumOK(ino uint32, b []byte) (bool, uint32, uint32) {
	le := binary.LittleEndian
	seed := c.ckInodeSeed(ino, le.Uint32(b[0x64:]))
	extra := le.Uint16(b[0x80:])
	hasHi := 0x80+int(extra) >= 0x84
	var sum uint32
	var stored uint32
	if hasHi {
		sum = ckCRC(seed, b[:0x7C], []byte{0, 0}, b[0x7E:0x82], []byte{0, 0}, b[0x84:inodeSize])
		stored = uint32(le.Uint16(b[0x82:]))<<16 | uint32(le.Uint16(b[0x7C:]))
	} else {
		sum = ckCRC(seed, b[:0x7C], []byte{0, 0}, b[0x7E:inodeSize])
		sum &= 0xFFFF
		stored = uint32(le.Uint16(b[0x7C:]))
	}
	return sum == stored, stored, sum
}

// checkInodes reads every initialised inode table slot and checks the
// used inodes.
func (c *checker) checkInodes() error {
	for g := uint64(0); g < c.groups; g++ {
		if c.iused[g] == nil {
			continue
		}
		gd := &c.gds[g]
		unused := min(uint64(gd.ItableUnusedHi)<<16|uint64(gd.ItableUnusedLo), c.ipg)
		n := c.ipg - unused
		it := uint64(gd.InodeTableHi)<<32 | uint64(gd.InodeTableLo)
		c.checkZeroTail(g, it, n)
		if n == 0 {
			continue
		}
		tbl, err := c.read(it, ceilDiv(n, inodesPerBlock))
		if err != nil {
			c.problem("group %d inode table: %v", g, err)
			continue
		}
		dirs := uint64(0)
		for i := uint64(0); i < n; i++ {
			ino := uint32(g*c.ipg + i + 1)
			b := tbl[i*inodeSize : (i+1)*inodeSize]
			if !bitSet(c.iused[g], i) {
				if ino < firstIno {
					c.problem("reserved inode %d is not marked in use", ino)
				} else if strings.Trim(string(b), "\x00") != "" {
					// The writer numbers inodes without gaps: a free slot
					// below the used ones is never written.
					c.problem("inode %d is free but its slot is not zeros", ino)
				}
				continue
			}
			n := c.checkInode(ino, b)
			if n != nil && n.mode&0xF000 == sIFDIR {
				dirs++
			}
		}
		if got := uint64(gd.UsedDirsCountHi)<<16 | uint64(gd.UsedDirsCountLo); got != dirs {
			c.problem("group %d: descriptor says %d directories, the inode table %d", g, got, dirs)
		}
	}
	if root := c.inodes[inoRoot]; root == nil || root.mode&0xF000 != sIFDIR {
		c.problem("the root inode is missing or not a directory")
		return errStop
	}
	return nil
}

// checkZeroTail checks that a group's inode table past its first n
// slots reads as zeros: ITABLE_ZEROED tells the kernel it need not zero
// it, and the kernel takes a slot there as a fresh inode. (A writer
// reusing a non-empty output file would leave old bytes there.)
func (c *checker) checkZeroTail(g, it, n uint64) {
	first := n * inodeSize / blockSize // the block holding slot n
	if first >= c.itb {
		return
	}
	b, err := c.read(it+first, c.itb-first)
	if err != nil {
		c.problem("group %d inode table: %v", g, err)
		return
	}
	b = b[n*inodeSize-first*blockSize:]
	for i, v := range b {
		if v != 0 {
			c.problem("group %d: the inode table past bg_itable_unused is not zeros (byte %d of inode %d)", g,
				i%inodeSize, g*c.ipg+n+uint64(i/inodeSize)+1)
			return
		}
	}
}

// checkInode checks one used inode and records it. It returns nil for a
// reserved inode or one too broken to follow.
func (c *checker) checkInode(ino uint32, b []byte) *ckInode {
	le := binary.LittleEndian
	if ok, stored, sum := c.inodeChecksumOK(ino, b); !ok {
		c.problem("inode %d: checksum %#x, computed %#x", ino, stored, sum)
		return nil
	}
	switch ino {
	case inoResize:
		c.checkResizeInode(b)
		return nil
	case inoJournal:
		c.checkJournalInode(b)
		return nil
	}
	if ino < firstIno && ino != inoRoot {
		// The bad blocks inode and the unused reserved ones hold nothing.
		if le.Uint16(b[0x00:]) != 0 || le.Uint16(b[0x1A:]) != 0 || strings.Trim(string(b[0x28:0x64]), "\x00") != "" ||
			le.Uint32(b[0x1C:]) != 0 || le.Uint32(b[0x04:]) != 0 {
			c.problem("reserved inode %d is not empty", ino)
		}
		return nil
	}
	n := &ckInode{
		ino:        ino,
		raw:        append([]byte(nil), b...),
		mode:       le.Uint16(b[0x00:]),
		links:      le.Uint16(b[0x1A:]),
		uid:        uint32(le.Uint16(b[0x02:])) | uint32(le.Uint16(b[0x78:]))<<16,
		gid:        uint32(le.Uint16(b[0x18:])) | uint32(le.Uint16(b[0x7A:]))<<16,
		size:       uint64(le.Uint32(b[0x04:])) | uint64(le.Uint32(b[0x6C:]))<<32,
		flags:      le.Uint32(b[0x20:]),
		iblocks:    uint64(le.Uint32(b[0x1C:])) | uint64(le.Uint16(b[0x74:]))<<32,
		xattrBlock: uint64(le.Uint32(b[0x68:])) | uint64(le.Uint16(b[0x76:]))<<32,
	}
	what := fmt.Sprintf("inode %d", ino)
	if n.links == 0 {
		c.problem("%s is in use with a link count of 0", what)
	}
	if d := le.Uint32(b[0x14:]); d != 0 {
		c.problem("%s is in use with a deletion time", what)
	}
	if e := le.Uint16(b[0x80:]); e != extraIsize {
		c.problem("%s: i_extra_isize %d, want %d", what, e, extraIsize)
		return nil
	}
	if p := le.Uint32(b[0x9C:]); p != 0 {
		c.problem("%s: i_projid %d without the project feature", what, p)
	}
	c.checkTimes(what, b)
	if n.flags&^uint32(inodeFlagExtents|inodeFlagIndex) != 0 {
		c.problem("%s: unexpected i_flags %#x", what, n.flags)
	}
	typ := n.mode & 0xF000
	extents := n.flags&inodeFlagExtents != 0
	if n.flags&inodeFlagIndex != 0 && typ != sIFDIR {
		c.problem("%s: INDEX_FL on a non-directory", what)
	}
	meta := uint64(0) // tree and xattr blocks, for i_blocks
	switch typ {
	case sIFREG, sIFDIR:
		if !extents {
			c.problem("%s: a file or directory without EXTENTS_FL", what)
			return nil
		}
		meta += c.walkExtents(n, b[0x28:0x64], what)
	case sIFLNK:
		if extents {
			meta += c.walkExtents(n, b[0x28:0x64], what)
			c.checkSlowSymlink(n, what)
		} else {
			c.checkFastSymlink(n, b[0x28:0x64], what)
		}
	case sIFCHR, sIFBLK:
		c.checkDevice(n, b[0x28:0x64], what)
	case sIFIFO, sIFSOCK:
		if extents || strings.Trim(string(b[0x28:0x64]), "\x00") != "" || n.size != 0 {
			c.problem("%s: a fifo or socket with data or extents", what)
		}
	default:
		c.problem("%s: mode %#o is no file type", what, n.mode)
		return nil
	}
	if typ != sIFREG && typ != sIFDIR && !(typ == sIFLNK && extents) && len(n.exts) > 0 {
		c.problem("%s: a %s with data blocks", what, typeName(n.mode))
	}
	var dataBlocks uint64
	for _, e := range n.exts {
		dataBlocks += uint64(e.len)
	}
	switch typ {
	case sIFREG:
		if n.size > maxFileBlocks*blockSize {
			c.problem("%s: size %d is past ext4's 16 TiB", what, n.size)
		}
		if k := len(n.exts); k > 0 {
			if end := uint64(n.exts[k-1].logical) + uint64(n.exts[k-1].len); end > ceilDiv(n.size, blockSize) {
				c.problem("%s: blocks mapped up to logical block %d, past its size %d", what, end, n.size)
			}
		}
	case sIFDIR:
		if n.size != dataBlocks*blockSize || n.size == 0 {
			c.problem("directory %d: size %d for %d blocks", ino, n.size, dataBlocks)
		}
		if !contiguousFromZero(n.exts) {
			c.problem("directory %d has holes", ino)
		}
	}
	c.parseInlineXattrs(n, b[inlineXattrStart:], what)
	if n.xattrBlock != 0 {
		c.useXattrBlock(n, what)
		meta++
	}
	if want := (dataBlocks + meta) * (blockSize / 512); n.iblocks != want {
		c.problem("%s: i_blocks %d, want %d (%d data, %d tree and xattr blocks)", what, n.iblocks, want, dataBlocks, meta)
	}
	c.inodes[ino] = n
	return n
}

func typeName(mode uint16) string {
	switch mode & 0xF000 {
	case sIFREG:
		return "regular file"
	case sIFDIR:
		return "directory"
	case sIFLNK:
		return "symlink"
	case sIFCHR:
		return "character device"
	case sIFBLK:
		return "block device"
	case sIFIFO:
		return "fifo"
	case sIFSOCK:
		return "socket"
	}
	return fmt.Sprintf("mode %#o", mode)
}

// ftOf is the directory entry file type of an inode mode.
func ftOf(mode uint16) uint8 {
	return map[uint16]uint8{sIFREG: ftRegular, sIFDIR: ftDir, sIFLNK: ftSymlink, sIFCHR: ftChrdev,
		sIFBLK: ftBlkdev, sIFIFO: ftFifo, sIFSOCK: ftSock}[mode&0xF000]
}

func contiguousFromZero(exts []run) bool {
	next := uint64(0)
	for _, e := range exts {
		if uint64(e.logical) != next {
			return false
		}
		next += uint64(e.len)
	}
	return true
}

// checkTimes checks the four times' extra fields: nanoseconds below a
// second, and none in the band e2fsck takes for a pre-1970 time that an
// old kernel mis-encoded (epoch bits 3 with the sign bit set: 2310 to
// 2378), which e2fsck -fn reports and e2fsck -p rewrites.
func (c *checker) checkTimes(what string, b []byte) {
	le := binary.LittleEndian
	var band []string
	for _, t := range []struct {
		name      string
		lo, extra int
	}{{"atime", 0x08, 0x8C}, {"ctime", 0x0C, 0x84}, {"mtime", 0x10, 0x88}, {"crtime", 0x90, 0x94}} {
		lo, extra := le.Uint32(b[t.lo:]), le.Uint32(b[t.extra:])
		if extra>>2 >= 1e9 {
			c.problem("%s: %s has %d nanoseconds", what, t.name, extra>>2)
		}
		if lo&(1<<31) != 0 && extra&3 == 3 {
			band = append(band, fmt.Sprintf("%s %d", t.name, int64(int32(lo))+3<<32))
		}
	}
	if len(band) > 0 {
		c.problem("%s: %s in 2310-2378, which e2fsck takes for mis-encoded pre-1970 times", what, strings.Join(band, ", "))
	}
}

// walkExtents checks an extent tree whose root is i_block, claims its
// blocks and records the data extents in n. It returns the number of
// tree blocks.
func (c *checker) walkExtents(n *ckInode, root []byte, what string) uint64 {
	seed := c.ckInodeSeed(n.ino, binary.LittleEndian.Uint32(n.raw[0x64:]))
	depth := binary.LittleEndian.Uint16(root[6:])
	if depth > extentTreeMaxLevels {
		c.problem("%s: extent tree depth %d", what, depth)
		return 0
	}
	var tree uint64
	c.extentNode(n, root, extentsInInode, int(depth), 0, 1<<32, seed, what, &tree)
	return tree
}

// extentNode checks one node covering logical blocks [lo, hi).
func (c *checker) extentNode(n *ckInode, b []byte, wantMax, depth int, lo, hi uint64, seed uint32, what string, tree *uint64) (first uint64, ok bool) {
	le := binary.LittleEndian
	if le.Uint16(b[0:]) != extentMagic {
		c.problem("%s: extent header magic %#x", what, le.Uint16(b[0:]))
		return 0, false
	}
	entries, max, d := int(le.Uint16(b[2:])), int(le.Uint16(b[4:])), int(le.Uint16(b[6:]))
	if max != wantMax || entries > max || d != depth {
		c.problem("%s: extent node with %d/%d entries at depth %d (want max %d, depth %d)", what, entries, max, d, wantMax, depth)
		return 0, false
	}
	if entries == 0 && (depth > 0 || wantMax != extentsInInode) {
		c.problem("%s: an empty extent node below the root", what)
		return 0, false
	}
	prevEnd := lo
	for i := 0; i < entries; i++ {
		e := b[extentHdrSize+i*extentEntrySize:]
		start := uint64(le.Uint32(e[0:]))
		if start < prevEnd || start >= hi || (i == 0 && wantMax != extentsInInode && start != lo) {
			c.problem("%s: extent entry %d at depth %d starts at logical block %d, outside %d..%d", what, i, depth, start, prevEnd, hi)
			return 0, false
		}
		if i == 0 {
			first = start
		}
		if depth == 0 {
			l := uint64(le.Uint16(e[4:]))
			if l == 0 || l > maxExtentLen {
				c.problem("%s: extent of %d blocks (0, or unwritten; this writer writes neither)", what, l)
				return 0, false
			}
			phys := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if start+l > hi {
				c.problem("%s: extent %d..%d runs past the node's range (%d)", what, start, start+l, hi)
				return 0, false
			}
			c.claim(phys, l, fmt.Sprintf("%s's data (logical %d)", what, start))
			if k := len(n.exts); k > 0 && uint64(n.exts[k-1].logical)+uint64(n.exts[k-1].len) > start {
				c.problem("%s: extents overlap at logical block %d", what, start)
			}
			n.exts = append(n.exts, run{logical: uint32(start), len: uint32(l), start: phys})
			prevEnd = start + l
			continue
		}
		childHi := hi
		if i+1 < entries {
			childHi = uint64(le.Uint32(b[extentHdrSize+(i+1)*extentEntrySize:]))
		}
		leaf := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		c.claim(leaf, 1, fmt.Sprintf("%s's extent tree block", what))
		*tree++
		blk, err := c.read(leaf, 1)
		if err != nil {
			c.problem("%s: extent tree block: %v", what, err)
			return 0, false
		}
		tail := extentHdrSize + extentEntrySize*int(le.Uint16(blk[4:]))
		if tail+4 > blockSize {
			c.problem("%s: extent tree block %d: eh_max %d", what, leaf, le.Uint16(blk[4:]))
			return 0, false
		}
		if sum := ckCRC(seed, blk[:tail]); sum != le.Uint32(blk[tail:]) {
			c.problem("%s: extent tree block %d: checksum %#x, computed %#x", what, leaf, le.Uint32(blk[tail:]), sum)
			return 0, false
		}
		if _, ok := c.extentNode(n, blk, extentsPerBlock, depth-1, start, childHi, seed, what, tree); !ok {
			return 0, false
		}
		prevEnd = start + 1
	}
	return first, true
}

func (c *checker) checkFastSymlink(n *ckInode, ib []byte, what string) {
	if n.size == 0 || n.size >= 60 {
		c.problem("%s: a symlink in i_block with size %d", what, n.size)
		return
	}
	t := string(ib[:n.size])
	if strings.IndexByte(t, 0) >= 0 || strings.Trim(string(ib[n.size:]), "\x00") != "" {
		c.problem("%s: fast symlink target %q does not match its size %d", what, ib, n.size)
	}
	n.linkTarget = t
}

func (c *checker) checkSlowSymlink(n *ckInode, what string) {
	if n.size < 60 || n.size > maxSymlinkLen || len(n.exts) != 1 || n.exts[0].logical != 0 || n.exts[0].len != 1 {
		c.problem("%s: a slow symlink of %d bytes in %d extents", what, n.size, len(n.exts))
		return
	}
	blk, err := c.read(n.exts[0].start, 1)
	if err != nil {
		c.problem("%s: %v", what, err)
		return
	}
	t := string(blk[:n.size])
	if strings.IndexByte(t, 0) >= 0 || blk[n.size] != 0 {
		c.problem("%s: slow symlink target does not match its size %d", what, n.size)
	}
	n.linkTarget = t
}

// checkDevice decodes a device number as the kernel's ext4 does: the
// old 16-bit form in word 0, else the new 32-bit form in word 1.
func (c *checker) checkDevice(n *ckInode, ib []byte, what string) {
	le := binary.LittleEndian
	w0, w1 := le.Uint32(ib[0:]), le.Uint32(ib[4:])
	if n.flags != 0 || strings.Trim(string(ib[8:]), "\x00") != "" || n.size != 0 {
		c.problem("%s: a device with flags, size or extra i_block words", what)
	}
	switch {
	case w0 != 0 && w1 != 0:
		c.problem("%s: both device number forms are set", what)
	case w0 != 0:
		if w0 > 0xFFFF {
			c.problem("%s: old device number %#x is past 16 bits", what, w0)
		}
		n.devMajor, n.devMinor = w0>>8&0xFF, w0&0xFF
	default:
		n.devMajor, n.devMinor = w1>>8&0xFFF, w1&0xFF|w1>>12&0xFFF00
		if n.devMajor < 256 && n.devMinor < 256 && w1 != 0 {
			// The kernel writes small numbers in the old form.
			c.problem("%s: device %d:%d in the new form", what, n.devMajor, n.devMinor)
		}
	}
}

// checkResizeInode checks inode 7 against e2fsprogs' res_gdt.c layout:
// a double-indirect block whose entries name the primary reserved GDT
// blocks, each of which lists its backups.
func (c *checker) checkResizeInode(b []byte) {
	le := binary.LittleEndian
	rsv := uint64(c.sb.ReservedGDTBlocks)
	if le.Uint16(b[0:]) != sIFREG|0o600 || le.Uint16(b[0x1A:]) != 1 {
		c.problem("resize inode: mode %#o links %d", le.Uint16(b[0:]), le.Uint16(b[0x1A:]))
	}
	if size := uint64(le.Uint32(b[0x04:])) | uint64(le.Uint32(b[0x6C:]))<<32; size != resizeInodeSize {
		c.problem("resize inode: size %d, want %d", size, uint64(resizeInodeSize))
	}
	dind := uint64(le.Uint32(b[0x28+13*4:]))
	for i := 0; i < 15; i++ {
		if i != 13 && le.Uint32(b[0x28+4*i:]) != 0 {
			c.problem("resize inode: i_block[%d] is set", i)
		}
	}
	backups := backupGroupsOf(c.groups)[1:]
	if got, want := uint64(le.Uint32(b[0x1C:])), (1+rsv*uint64(len(backups)+1))*(blockSize/512); got != want {
		c.problem("resize inode: i_blocks %d, want %d", got, want)
	}
	if dind == 0 {
		c.problem("resize inode: no double-indirect block")
		return
	}
	c.claim(dind, 1, "the resize inode's double-indirect block")
	d, err := c.read(dind, 1)
	if err != nil {
		c.problem("resize inode: %v", err)
		return
	}
	for j := uint64(0); j < rsv; j++ {
		primary := 1 + c.gdtBlks + j
		if got := le.Uint32(d[4*((c.gdtBlks+j)%addrPerBlock):]); uint64(got) != primary {
			c.problem("resize inode: dind entry %d is %d, want %d", (c.gdtBlks+j)%addrPerBlock, got, primary)
			return
		}
		list, err := c.read(primary, 1)
		if err != nil {
			c.problem("resize inode: %v", err)
			return
		}
		for i, bg := range backups {
			if got := le.Uint32(list[4*i:]); uint64(got) != primary+bg*blocksPerGroup {
				c.problem("reserved GDT block %d: backup %d is %d, want %d", primary, i, got, primary+bg*blocksPerGroup)
				return
			}
		}
	}
}

// checkJournalInode checks inode 8, its extents and the superblock's
// copy of its i_block, and the jbd2 superblock.
func (c *checker) checkJournalInode(b []byte) {
	le := binary.LittleEndian
	n := &ckInode{ino: inoJournal, raw: append([]byte(nil), b...), flags: le.Uint32(b[0x20:])}
	if le.Uint16(b[0:]) != sIFREG|0o600 || le.Uint16(b[0x1A:]) != 1 || n.flags != inodeFlagExtents {
		c.problem("journal inode: mode %#o links %d flags %#x", le.Uint16(b[0:]), le.Uint16(b[0x1A:]), n.flags)
		return
	}
	tree := c.walkExtents(n, b[0x28:0x64], "the journal")
	var blocks uint64
	for _, e := range n.exts {
		blocks += uint64(e.len)
	}
	size := uint64(le.Uint32(b[0x04:])) | uint64(le.Uint32(b[0x6C:]))<<32
	if !contiguousFromZero(n.exts) || size != blocks*blockSize || blocks < 1024 {
		c.problem("journal: %d blocks in %d extents for a size of %d", blocks, len(n.exts), size)
		return
	}
	if got := uint64(le.Uint32(b[0x1C:])); got != (blocks+tree)*(blockSize/512) {
		c.problem("journal inode: i_blocks %d, want %d", got, (blocks+tree)*(blockSize/512))
	}
	for i := 0; i < 15; i++ {
		if c.sb.JnlBlocks[i] != le.Uint32(b[0x28+4*i:]) {
			c.problem("superblock s_jnl_blocks[%d] differs from the journal inode's i_block", i)
			break
		}
	}
	if c.sb.JnlBlocks[15] != uint32(size>>32) || c.sb.JnlBlocks[16] != uint32(size) {
		c.problem("superblock s_jnl_blocks[15..16] do not give the journal size")
	}
	js, err := c.read(n.exts[0].start, 1)
	if err != nil {
		c.problem("journal superblock: %v", err)
		return
	}
	be := binary.BigEndian
	if be.Uint32(js[0:]) != jbd2Magic || be.Uint32(js[4:]) != jbd2SuperblockV || be.Uint32(js[0xC:]) != blockSize ||
		uint64(be.Uint32(js[0x10:])) != blocks || be.Uint32(js[0x14:]) != 1 || be.Uint32(js[0x1C:]) != 0 ||
		be.Uint32(js[0x24:])|be.Uint32(js[0x28:])|be.Uint32(js[0x2C:]) != 0 || string(js[0x30:0x40]) != string(c.sb.UUID[:]) {
		c.problem("journal superblock: not a clean, empty, featureless v2 journal of %d blocks for this filesystem", blocks)
	}
}

// ckXattrHash is ext4_xattr_hash_entry. Names are hashed as unsigned
// bytes; Linux 6.2 and e2fsprogs 1.47 also accept the signed-char hash
// older x86 kernels wrote, so signed gives that variant.
func ckXattrHash(name, value []byte, signed bool) uint32 {
	var h uint32
	for _, ch := range name {
		v := uint32(ch)
		if signed {
			v = uint32(int32(int8(ch)))
		}
		h = h<<5 ^ h>>27 ^ v
	}
	for i := 0; i < len(value); i += 4 {
		var w [4]byte
		copy(w[:], value[i:])
		h = h<<16 ^ h>>16 ^ binary.LittleEndian.Uint32(w[:])
	}
	return h
}

var ckXattrPrefix = map[uint8]string{
	xattrIndexUser: "user.", xattrIndexACLAccess: "system.posix_acl_access", xattrIndexACLDefault: "system.posix_acl_default",
	xattrIndexTrusted: "trusted.", xattrIndexSecurity: "security.", xattrIndexSystem: "system.",
}

// parseXattrEntries reads an entry table at region[at:], values at
// base+value_offs. It checks each entry, that values lie in the region
// after the table without overlapping, and returns the attributes and
// the entry hashes.
func (c *checker) parseXattrEntries(region []byte, at, base int, sorted bool, what string) (map[string][]byte, []uint32, bool) {
	le := binary.LittleEndian
	out := map[string][]byte{}
	var hashes []uint32
	type span struct{ a, b int }
	var values []span
	off := at
	var prev struct {
		idx  uint8
		name string
	}
	for n := 0; ; n++ {
		if off+4 > len(region) {
			c.problem("%s: xattr entries run past the end", what)
			return nil, nil, false
		}
		if le.Uint32(region[off:]) == 0 {
			break
		}
		if off+xattrEntrySize > len(region) {
			c.problem("%s: xattr entry %d runs past the end", what, n)
			return nil, nil, false
		}
		nameLen, idx := int(region[off]), region[off+1]
		voff, vinum, vsize, hash := int(le.Uint16(region[off+2:])), le.Uint32(region[off+4:]), int(le.Uint32(region[off+8:])), le.Uint32(region[off+12:])
		end := off + xattrEntrySize + pad4(nameLen)
		if end+4 > len(region) {
			c.problem("%s: xattr entry %d runs past the end", what, n)
			return nil, nil, false
		}
		name := string(region[off+xattrEntrySize : off+xattrEntrySize+nameLen])
		prefix, known := ckXattrPrefix[idx]
		acl := idx == xattrIndexACLAccess || idx == xattrIndexACLDefault
		switch {
		case !known:
			c.problem("%s: xattr name index %d", what, idx)
		case acl != (nameLen == 0):
			c.problem("%s: xattr %q with index %d", what, name, idx)
		case strings.IndexByte(name, 0) >= 0:
			c.problem("%s: xattr name %q holds a NUL", what, name)
		}
		if vinum != 0 {
			c.problem("%s: xattr %s%s in an inode (%d) without ea_inode", what, prefix, name, vinum)
		}
		if sorted && n > 0 && !(prev.idx < idx || prev.idx == idx && (len(prev.name) < len(name) || len(prev.name) == len(name) && prev.name < name)) {
			// The kernel stops its search of a block at the first name
			// past the one it looks for: unsorted names are lost.
			c.problem("%s: xattr block entries out of order at %s%s", what, prefix, name)
		}
		prev.idx, prev.name = idx, name
		var value []byte
		if vsize > 0 {
			a := base + voff
			if voff%4 != 0 || a < 0 || a+vsize > len(region) || vsize > len(region) {
				c.problem("%s: xattr %s%s value at %d+%d is outside its region", what, prefix, name, voff, vsize)
				return nil, nil, false
			}
			values = append(values, span{a, a + pad4(vsize)})
			value = append([]byte(nil), region[a:a+vsize]...)
		}
		if h := ckXattrHash([]byte(name), value, false); hash != h && hash != ckXattrHash([]byte(name), value, true) {
			if sorted || hash != 0 { // e2fsck allows 0 in an inode
				c.problem("%s: xattr %s%s hash %#x, computed %#x", what, prefix, name, hash, h)
			}
		}
		hashes = append(hashes, hash)
		full := prefix + name
		if _, dup := out[full]; dup {
			c.problem("%s: xattr %s twice", what, full)
		}
		if acl {
			c.checkACL(value, what+" "+full)
		}
		out[full] = value
		off = end
	}
	tableEnd := off + 4
	for i, v := range values {
		if v.a < tableEnd {
			c.problem("%s: an xattr value overlaps the entry table", what)
			return nil, nil, false
		}
		for _, w := range values[:i] {
			if v.a < w.b && w.a < v.b {
				c.problem("%s: two xattr values overlap", what)
				return nil, nil, false
			}
		}
	}
	return out, hashes, true
}

// parseInlineXattrs reads the xattrs after i_extra_isize: a magic, then
// entries whose value offsets count from the first entry.
func (c *checker) parseInlineXattrs(n *ckInode, area []byte, what string) {
	if binary.LittleEndian.Uint32(area) != xattrMagic {
		if strings.Trim(string(area), "\x00") != "" {
			c.problem("%s: bytes after i_extra_isize without the xattr magic", what)
		}
		return
	}
	xs, _, ok := c.parseXattrEntries(area, 4, 4, false, what+" (in-inode xattrs)")
	if !ok {
		return
	}
	n.xattrs = xs
}

// useXattrBlock checks n's external xattr block the first time it is
// met, and counts its users for the refcount check.
func (c *checker) useXattrBlock(n *ckInode, what string) {
	blk := n.xattrBlock
	xb := c.xblocks[blk]
	if xb == nil {
		xb = &ckXattrBlock{}
		c.xblocks[blk] = xb
		c.claim(blk, 1, fmt.Sprintf("the xattr block first used by %s", what))
		c.parseXattrBlock(blk, xb)
	}
	xb.users++
	if n.xattrs == nil {
		n.xattrs = map[string][]byte{}
	}
	for k, v := range xb.xattrs {
		if _, dup := n.xattrs[k]; dup {
			c.problem("%s: xattr %s both in the inode and in its block", what, k)
		}
		n.xattrs[k] = v
	}
}

func (c *checker) parseXattrBlock(blk uint64, xb *ckXattrBlock) {
	le := binary.LittleEndian
	what := fmt.Sprintf("xattr block %d", blk)
	b, err := c.read(blk, 1)
	if err != nil {
		c.problem("%s: %v", what, err)
		return
	}
	if le.Uint32(b[0:]) != xattrMagic || le.Uint32(b[8:]) != 1 {
		c.problem("%s: magic %#x, h_blocks %d", what, le.Uint32(b[0:]), le.Uint32(b[8:]))
		return
	}
	// ext4_xattr_block_csum: the block number, then the block with
	// h_checksum read as zero.
	var bn [8]byte
	binary.LittleEndian.PutUint64(bn[:], blk)
	if sum := ckCRC(c.seed, bn[:], b[:0x10], []byte{0, 0, 0, 0}, b[0x14:]); sum != le.Uint32(b[0x10:]) {
		c.problem("%s: checksum %#x, computed %#x", what, le.Uint32(b[0x10:]), sum)
		return
	}
	xb.refcount = le.Uint32(b[4:])
	xs, hashes, ok := c.parseXattrEntries(b, xattrBlockHdrSize, 0, true, what)
	if !ok {
		return
	}
	if len(xs) == 0 {
		c.problem("%s: no entries", what)
	}
	// ext4_xattr_rehash: 0 if any entry hash is 0.
	var h uint32
	for _, eh := range hashes {
		if eh == 0 {
			h = 0
			break
		}
		h = h<<16 ^ h>>16 ^ eh
	}
	if got := le.Uint32(b[0x0C:]); got != h {
		c.problem("%s: h_hash %#x, computed %#x", what, got, h)
	}
	xb.xattrs = xs
}

// checkACL checks a POSIX ACL in ext4's on-disk form as the kernel's
// ext4_acl_from_disk reads it, and the rules of posix_acl_valid: one
// owner, group and other entry, a mask when there are named entries,
// entries by tag and then id, each id once, permissions rwx only.
func (c *checker) checkACL(v []byte, what string) {
	le := binary.LittleEndian
	if len(v) < 4 || le.Uint32(v) != aclDiskVersion {
		c.problem("%s: not a version-1 ext4 ACL", what)
		return
	}
	type ent struct {
		tag, perm uint16
		id        uint32
	}
	var es []ent
	for o := 4; o < len(v); {
		if o+4 > len(v) {
			c.problem("%s: a partial ACL entry", what)
			return
		}
		e := ent{tag: le.Uint16(v[o:]), perm: le.Uint16(v[o+2:])}
		switch e.tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			o += 4
		case aclUser, aclGroup:
			if o+8 > len(v) {
				c.problem("%s: a partial ACL entry", what)
				return
			}
			e.id = le.Uint32(v[o+4:])
			o += 8
		default:
			c.problem("%s: ACL tag %#x (the kernel refuses the whole ACL)", what, e.tag)
			return
		}
		es = append(es, e)
	}
	// ext4_acl_count: the size must split into 4 short entries and
	// long ones, or be short entries alone.
	if rest := len(v) - 4; rest >= 16 && (rest-16)%8 != 0 || rest < 16 && rest%4 != 0 {
		c.problem("%s: an ACL of %d bytes the kernel cannot count", what, len(v))
	}
	if len(es) == 0 {
		return
	}
	count := map[uint16]int{}
	named := false
	for i, e := range es {
		count[e.tag]++
		if e.perm&^7 != 0 {
			c.problem("%s: ACL permission %#o", what, e.perm)
		}
		if e.tag == aclUser || e.tag == aclGroup {
			named = true
		}
		if i > 0 {
			p := es[i-1]
			if p.tag > e.tag || p.tag == e.tag && (e.tag != aclUser && e.tag != aclGroup || p.id >= e.id) {
				c.problem("%s: ACL entries out of order or repeated (tag %#x)", what, e.tag)
			}
		}
	}
	if count[aclUserObj] != 1 || count[aclGroupObj] != 1 || count[aclOther] != 1 || count[aclMask] > 1 || named && count[aclMask] != 1 {
		c.problem("%s: ACL without exactly one owner, group and other entry, or a mask where named entries need one", what)
	}
}
