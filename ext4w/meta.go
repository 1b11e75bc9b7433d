package ext4w

import (
	"encoding/binary"
	"fmt"
	"io"
)

// writeMeta writes every piece of metadata Close laid out, then sets the
// output's size.
func (w *Writer) writeMeta(cs *closeState) error {
	steps := []func(*closeState) error{
		w.writeDirs,
		w.writeXattrBlocks,
		w.writeJournal,
		w.writeResize,
		w.writeInodeTables,
		w.writeGroups,
	}
	for _, step := range steps {
		if err := step(cs); err != nil {
			return err
		}
	}
	if err := w.out.Truncate(int64(cs.geo.blocks) * blockSize); err != nil {
		return fmt.Errorf("ext4w: setting the image size: %w", err)
	}
	return nil
}

func (w *Writer) writeAt(p []byte, blk uint64) error {
	n, err := w.out.WriteAt(p, int64(blk)*blockSize)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("ext4w: writing metadata at block %d: %w", blk, err)
	}
	return nil
}

// writeRuns writes blocks in order to the blocks runs describe.
func (w *Writer) writeRuns(rs []run, blocks [][]byte) error {
	i := 0
	for _, r := range rs {
		for k := uint32(0); k < r.len && i < len(blocks); k++ {
			if err := w.writeAt(blocks[i], r.start+uint64(k)); err != nil {
				return err
			}
			i++
		}
	}
	return nil
}

func (w *Writer) writeDirs(cs *closeState) error {
	for id := uint32(1); id < w.nodes.len(); id++ {
		n := w.nodes.at(id)
		if n.mode == 0 || n.dir == nil {
			continue
		}
		blocks, indexed, err := w.buildDir(cs, id)
		if err != nil {
			return err
		}
		if uint32(len(blocks)) != cs.dirBlocks[id] {
			panic("ext4w: directory layout changed between passes")
		}
		err = w.writeRuns(n.runs(), blocks)
		freeBlocks(blocks)
		if err != nil {
			return err
		}
		n.size = uint64(len(blocks)) * blockSize
		n.dir.indexed = indexed
	}
	return nil
}

func (w *Writer) writeXattrBlocks(cs *closeState) error {
	for _, k := range cs.xattrOrder {
		sx := cs.xattrBlocks[k]
		finishXattrBlock(sx.content, sx.refs, sx.block, cs.seed)
		if err := w.writeAt(sx.content, sx.block); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) writeJournal(cs *closeState) error {
	return w.writeAt(journalSuperblock(cs.geo.journal, cs.uuid), cs.journal[0].start)
}

// resizeInodeSize is i_size of the resize inode: what a double-indirect
// map can address (e2fsprogs' ext2fs_create_resize_inode).
const resizeInodeSize = (addrPerBlock*addrPerBlock + addrPerBlock + 12) * blockSize

// writeResize writes the resize inode's double-indirect block and the
// primary reserved GDT blocks, which list their backups' locations
// (lib/ext2fs/res_gdt.c): what resize2fs and e2fsck expect.
func (w *Writer) writeResize(cs *closeState) error {
	g := &cs.geo
	le := binary.LittleEndian
	dind := make([]byte, blockSize)
	backups := backupGroups(g.groups)[1:]
	for j := uint64(0); j < g.rsvGDT; j++ {
		primary := 1 + g.gdt + j
		le.PutUint32(dind[4*((g.gdt+j)%addrPerBlock):], uint32(primary))
		list := make([]byte, blockSize)
		for i, bg := range backups {
			le.PutUint32(list[4*i:], uint32(primary+bg*blocksPerGroup))
		}
		if err := w.writeAt(list, primary); err != nil {
			return err
		}
	}
	return w.writeAt(dind, cs.dind)
}

// inodeBlock returns n's i_block, i_flags and i_blocks, and writes its
// extent tree blocks if it has any.
func (w *Writer) inodeBlock(cs *closeState, n *inode) (ib [60]byte, flags uint32, blocks uint64, err error) {
	le := binary.LittleEndian
	var meta uint64
	switch n.mode & 0xF000 {
	case sIFREG, sIFDIR, sIFLNK:
		if link := n.link(); link != "" {
			copy(ib[:], link)
			break
		}
		flags |= inodeFlagExtents
		if n.dir != nil && n.dir.indexed {
			flags |= inodeFlagIndex
		}
		exts := extents(n.runs())
		t := extentTreeBlocks(len(exts))
		tblocks := make([]uint64, t)
		for i := range tblocks {
			tblocks[i] = uint64(n.tree) + uint64(i)
		}
		var tree [][]byte
		ib, tree = buildExtentTree(exts, tblocks, inodeSeed(cs.seed, n.ino, 0))
		for i, b := range tree {
			if err := w.writeAt(b, tblocks[i]); err != nil {
				return ib, 0, 0, err
			}
		}
		meta = t
	case sIFCHR, sIFBLK:
		if n.ext != nil {
			le.PutUint32(ib[0:], n.ext.dev[0])
			le.PutUint32(ib[4:], n.ext.dev[1])
		}
	}
	if n.xattrBlock != 0 {
		meta++
	}
	return ib, flags, (n.dataBlocks() + meta) * (blockSize / 512), nil
}

// specialInode fills the reserved inodes mke2fs writes: the resize and
// journal inodes, and zeroed ones with a checksum (the bad blocks inode
// with times) for the rest.
func (w *Writer) specialInode(cs *closeState, ino uint32, b []byte) error {
	times := encodeTimes(timestamp{sec: int64(cs.sbTime)})
	switch ino {
	case inoResize:
		n := inode{mode: sIFREG | 0o600, links: 1, size: resizeInodeSize, times: times, ino: ino}
		nb := uint64(len(backupGroups(cs.geo.groups)))
		var ib [60]byte
		binary.LittleEndian.PutUint32(ib[13*4:], uint32(cs.dind)) // EXT2_DIND_BLOCK
		n.marshal(b, &ib, cs.seed, 0, (1+cs.geo.rsvGDT*nb)*(blockSize/512))
	case inoJournal:
		n := inode{mode: sIFREG | 0o600, links: 1, size: cs.geo.journal * blockSize, times: times,
			ino: ino, tree: uint32(cs.journalTree)}
		n.setRuns(cs.journal)
		ib, flags, blocks, err := w.inodeBlock(cs, &n)
		if err != nil {
			return err
		}
		n.marshal(b, &ib, cs.seed, flags, blocks)
		cs.jnlBlocks = ib
	default:
		if ino == 1 {
			le := binary.LittleEndian
			le.PutUint32(b[0x08:], cs.sbTime)
			le.PutUint32(b[0x0C:], cs.sbTime)
			le.PutUint32(b[0x10:], cs.sbTime)
		}
		setInodeChecksum(b, ino, cs.seed, false)
	}
	return nil
}

func (w *Writer) writeInodeTables(cs *closeState) error {
	g := &cs.geo
	buf := make([]byte, g.itableBlocks*blockSize)
	for gi := uint64(0); gi < g.groups; gi++ {
		first := gi*g.inodesPer + 1
		if first > uint64(cs.maxIno) {
			break
		}
		used := min(uint64(cs.maxIno)-first+1, g.inodesPer)
		out := buf[:ceilDiv(used, inodesPerBlock)*blockSize]
		clear(out)
		for k := uint64(0); k < used; k++ {
			ino := uint32(first + k)
			b := out[k*inodeSize : (k+1)*inodeSize]
			if ino < firstIno && ino != inoRoot {
				if err := w.specialInode(cs, ino, b); err != nil {
					return err
				}
				continue
			}
			n := w.nodes.at(cs.byIno[ino])
			ib, flags, blocks, err := w.inodeBlock(cs, n)
			if err != nil {
				return err
			}
			n.marshal(b, &ib, cs.seed, flags, blocks)
		}
		if err := w.writeAt(out, cs.inodeTables[gi]); err != nil {
			return err
		}
	}
	return nil
}

// setBits sets bits [from, to) of a bitmap.
func setBits(bm []byte, from, to uint64) {
	for ; from < to && from%8 != 0; from++ {
		bm[from/8] |= 1 << (from % 8)
	}
	for ; from+8 <= to; from += 8 {
		bm[from/8] = 0xFF
	}
	for ; from < to; from++ {
		bm[from/8] |= 1 << (from % 8)
	}
}

// writeGroups writes the bitmaps, the group descriptors and the
// superblock, each with its backups.
func (w *Writer) writeGroups(cs *closeState) error {
	g := &cs.geo
	le := binary.LittleEndian
	gdt := make([]byte, g.gdt*blockSize)
	bm := make([]byte, blockSize)
	var freeBlocks uint64
	dirs := make([]uint32, g.groups)
	for ino := uint32(1); ino <= cs.maxIno; ino++ {
		if id := cs.byIno[ino]; id != 0 && w.nodes.at(id).dir != nil {
			dirs[uint64(ino-1)/g.inodesPer]++
		}
	}
	ui := 0 // cs.used cursor
	for gi := uint64(0); gi < g.groups; gi++ {
		start := gi * blocksPerGroup
		nblk := g.groupBlocks(gi)
		clear(bm)
		var usedBlocks uint64
		for ui < len(cs.used) && cs.used[ui].end <= start {
			ui++
		}
		for k := ui; k < len(cs.used) && cs.used[k].start < start+nblk; k++ {
			a := max(cs.used[k].start, start)
			b := min(cs.used[k].end, start+nblk)
			setBits(bm, a-start, b-start)
			usedBlocks += b - a
		}
		setBits(bm, nblk, blocksPerGroup) // past the end of the filesystem
		free := nblk - usedBlocks
		freeBlocks += free
		bbLoc := cs.blockBitmaps + gi
		if usedBlocks > 0 || nblk < blocksPerGroup {
			if err := w.writeAt(bm, bbLoc); err != nil {
				return err
			}
		}
		bbSum := crc32c(cs.seed, bm)

		// Inodes in use are 1..maxIno, so each group's are a prefix.
		first := gi * g.inodesPer
		usedInodes := uint64(0)
		if uint64(cs.maxIno) > first {
			usedInodes = min(uint64(cs.maxIno)-first, g.inodesPer)
		}
		ibLoc := cs.blockBitmaps + g.groups + gi
		var ibSum uint32
		flags := uint16(bgItableZeroed)
		if usedInodes == 0 && gi != 0 {
			flags |= bgInodeUninit // the kernel starts from zeros; nothing to write
		} else {
			clear(bm)
			setBits(bm, 0, usedInodes)
			setBits(bm, g.inodesPer, blocksPerGroup)
			if err := w.writeAt(bm, ibLoc); err != nil {
				return err
			}
			ibSum = crc32c(cs.seed, bm[:g.inodesPer/8])
		}
		d := gdt[gi*descSize : (gi+1)*descSize]
		itable := cs.inodeTables[gi]
		freeInodes := g.inodesPer - usedInodes
		unused := g.inodesPer - usedInodes
		le.PutUint32(d[0x00:], uint32(bbLoc))
		le.PutUint32(d[0x04:], uint32(ibLoc))
		le.PutUint32(d[0x08:], uint32(itable))
		le.PutUint16(d[0x0C:], uint16(free))
		le.PutUint16(d[0x0E:], uint16(freeInodes))
		le.PutUint16(d[0x10:], uint16(dirs[gi]))
		le.PutUint16(d[0x12:], flags)
		le.PutUint16(d[0x18:], uint16(bbSum))
		le.PutUint16(d[0x1A:], uint16(ibSum))
		le.PutUint16(d[0x1C:], uint16(unused))
		le.PutUint32(d[0x20:], uint32(bbLoc>>32))
		le.PutUint32(d[0x24:], uint32(ibLoc>>32))
		le.PutUint32(d[0x28:], uint32(itable>>32))
		le.PutUint16(d[0x2C:], uint16(free>>16))
		le.PutUint16(d[0x2E:], uint16(freeInodes>>16))
		le.PutUint16(d[0x30:], uint16(dirs[gi]>>16))
		le.PutUint16(d[0x32:], uint16(unused>>16))
		le.PutUint16(d[0x38:], uint16(bbSum>>16))
		le.PutUint16(d[0x3A:], uint16(ibSum>>16))
		sum := crc32c(crc32cU32(cs.seed, uint32(gi)), d)
		le.PutUint16(d[0x1E:], uint16(sum))
	}
	sb := w.superblock(cs, freeBlocks)
	for _, bg := range backupGroups(g.groups) {
		sb.BlockGroupNr = uint16(bg)
		raw, err := encodeSuperblock(&sb)
		if err != nil {
			return err
		}
		base := bg * blocksPerGroup
		if bg == 0 {
			if _, err := w.out.WriteAt(raw, superblockOffset); err != nil {
				return fmt.Errorf("ext4w: writing the superblock: %w", err)
			}
		} else if err := w.writeAt(raw, base); err != nil {
			return err
		}
		if err := w.writeAt(gdt, base+1); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) superblock(cs *closeState, freeBlocks uint64) Superblock {
	g := &cs.geo
	t := cs.sbTime
	sb := Superblock{
		InodesCount:       uint32(cs.inodes),
		BlocksCountLo:     uint32(g.blocks),
		BlocksCountHi:     uint32(g.blocks >> 32),
		RBlocksCountLo:    uint32(g.blocks * 5 / 100), // mke2fs -m 5
		RBlocksCountHi:    uint32(g.blocks * 5 / 100 >> 32),
		FreeBlocksCountLo: uint32(freeBlocks),
		FreeBlocksCountHi: uint32(freeBlocks >> 32),
		FreeInodesCount:   uint32(cs.inodes - uint64(cs.maxIno)),
		LogBlockSize:      blockSizeLog,
		LogClusterSize:    blockSizeLog,
		BlocksPerGroup:    blocksPerGroup,
		ClustersPerGroup:  blocksPerGroup,
		InodesPerGroup:    uint32(g.inodesPer),
		Wtime:             t,
		MaxMntCount:       maxMountDisabled,
		Magic:             superMagic,
		State:             stateClean,
		Errors:            errorsContinue,
		Lastcheck:         t,
		CreatorOS:         creatorOSLinux,
		RevLevel:          revDynamic,
		FirstIno:          firstIno,
		InodeSize:         inodeSize,
		FeatureCompat:     uint32(CompatHasJournal | CompatExtAttr | CompatResizeInode | CompatDirIndex),
		FeatureIncompat:   uint32(IncompatFiletype | IncompatExtents | Incompat64bit | IncompatFlexBG),
		FeatureROCompat: uint32(ROCompatSparseSuper | ROCompatLargeFile | ROCompatHugeFile |
			ROCompatDirNlink | ROCompatExtraIsize | ROCompatMetadataCsum),
		UUID:              cs.uuid,
		ReservedGDTBlocks: uint16(g.rsvGDT),
		JournalInum:       inoJournal,
		HashSeed:          cs.hseed,
		DefHashVersion:    hashHalfMD4,
		JnlBackupType:     jnlBackupBlocks,
		DescSize:          descSize,
		DefaultMountOpts:  mountOptXattr | mountOptACL,
		MkfsTime:          t,
		MinExtraIsize:     extraIsize,
		WantExtraIsize:    extraIsize,
		Flags:             flagSignedHash,
		LogGroupsPerFlex:  logGroupsFlex,
		ChecksumType:      checksumCRC32C,
		OverheadClusters:  uint32(g.fixedOverhead()),
	}
	copy(sb.VolumeName[:], w.opt.label)
	for i := 0; i < 15; i++ {
		sb.JnlBlocks[i] = binary.LittleEndian.Uint32(cs.jnlBlocks[4*i:])
	}
	sb.JnlBlocks[15] = uint32(g.journal * blockSize >> 32)
	sb.JnlBlocks[16] = uint32(g.journal * blockSize)
	return sb
}

// encodeSuperblock serializes sb and sets its checksum (crc32c of all
// bytes before s_checksum, ext4_superblock_csum).
func encodeSuperblock(sb *Superblock) ([]byte, error) {
	raw := make([]byte, superblockSize)
	n, err := binary.Encode(raw, binary.LittleEndian, sb)
	if err != nil || n != superblockSize {
		return nil, fmt.Errorf("ext4w: encoding the superblock: %d bytes, %v", n, err)
	}
	binary.LittleEndian.PutUint32(raw[0x3FC:], crc32c(^uint32(0), raw[:0x3FC]))
	return raw, nil
}
