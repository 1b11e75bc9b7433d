package ext4w

// layout.go computes the filesystem geometry: group count, inodes per
// group, GDT and reserved GDT blocks, the journal size and the blocks the
// fixed metadata takes. It follows mke2fs (lib/ext2fs/initialize.c,
// mkjournal.c) so that images look like those mkfs.ext4 makes.

// hasBackup reports whether group g holds a superblock and GDT copy under
// sparse_super: groups 0 and 1 and the powers of 3, 5 and 7.
func hasBackup(g uint64) bool {
	if g <= 1 {
		return true
	}
	for _, base := range []uint64{3, 5, 7} {
		p := base
		for p < g {
			p *= base
		}
		if p == g {
			return true
		}
	}
	return false
}

// backupGroups lists the groups below n that hold backups, in order.
func backupGroups(n uint64) []uint64 {
	var out []uint64
	for g := uint64(0); g < n; g++ {
		if hasBackup(g) {
			out = append(out, g)
		}
	}
	return out
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// gdtBlocks is the number of blocks the group descriptor table takes.
func gdtBlocks(groups uint64) uint64 { return ceilDiv(groups, descsPerBlock) }

// reservedGDTBlocks is mke2fs's calc_reserved_gdt_blocks: room for the
// GDT of a filesystem 1024 times larger, or of 2^32 blocks, whichever is
// less, and never more than one indirect block's worth.
func reservedGDTBlocks(blocks uint64) uint64 {
	maxBlocks := uint64(0xFFFFFFFF)
	if blocks < maxBlocks/1024 {
		maxBlocks = blocks * 1024
	}
	rsvGroups := ceilDiv(maxBlocks, blocksPerGroup)
	rsv := ceilDiv(rsvGroups, descsPerBlock) - gdtBlocks(ceilDiv(blocks, blocksPerGroup))
	if int64(rsv) < 0 {
		rsv = 0
	}
	if rsv > addrPerBlock {
		rsv = addrPerBlock
	}
	return rsv
}

// worstBackupRegion is the most blocks a superblock + GDT + reserved GDT
// copy can take at any size up to MaxSize. While the final size is not
// known, streamed data steps around this much at each backup group.
const worstBackupRegion = 1 + 2048

// journalBlocks is ext2fs_default_journal_size for 4 KiB blocks.
func journalBlocks(blocks uint64) uint64 {
	switch {
	case blocks < 2048:
		return 0
	case blocks < 32768:
		return 1024
	case blocks < 256*1024:
		return 4096
	case blocks < 512*1024:
		return 8192
	case blocks < 4096*1024:
		return 16384
	case blocks < 8192*1024:
		return 32768
	case blocks < 16384*1024:
		return 65536
	case blocks < 32768*1024:
		return 131072
	}
	return 262144
}

// geometry is the shape of a filesystem of a given size and inode count.
type geometry struct {
	blocks       uint64 // s_blocks_count
	groups       uint64
	inodesPer    uint64 // s_inodes_per_group
	itableBlocks uint64 // inode table blocks per group
	gdt          uint64 // GDT blocks
	rsvGDT       uint64 // reserved GDT blocks
	journal      uint64 // journal blocks
}

// newGeometry lays out a filesystem of blocks blocks with at least inodes
// inodes. It drops a last group too small for its own metadata, as
// mke2fs does, so blocks may come back smaller.
func newGeometry(blocks, inodes uint64) geometry {
	for {
		g := geometry{blocks: blocks}
		g.groups = ceilDiv(blocks, blocksPerGroup)
		ipg := ceilDiv(inodes, g.groups)
		// Whole inode table blocks, and whole bitmap bytes.
		ipg = ceilDiv(ipg, inodesPerBlock) * inodesPerBlock
		if ipg < inodesPerBlock {
			ipg = inodesPerBlock
		}
		if ipg > blocksPerGroup {
			ipg = blocksPerGroup
		}
		g.inodesPer = ipg
		g.itableBlocks = ipg / inodesPerBlock
		g.gdt = gdtBlocks(g.groups)
		g.rsvGDT = reservedGDTBlocks(blocks)
		g.journal = journalBlocks(blocks)
		rem := blocks % blocksPerGroup
		overhead := 3 + g.itableBlocks + g.rsvGDT
		if hasBackup(g.groups - 1) {
			overhead += 1 + g.gdt + g.rsvGDT
		}
		if g.groups > 1 && rem != 0 && rem < overhead+50 {
			blocks -= rem
			continue
		}
		return g
	}
}

// backupRegion is the number of blocks at the start of a backup group
// taken by the superblock, the GDT and the reserved GDT blocks.
func (g *geometry) backupRegion() uint64 { return 1 + g.gdt + g.rsvGDT }

// groupBlocks is the number of blocks in group i (the last may be short).
func (g *geometry) groupBlocks(i uint64) uint64 {
	if i == g.groups-1 && g.blocks%blocksPerGroup != 0 {
		return g.blocks % blocksPerGroup
	}
	return blocksPerGroup
}

// fixedOverhead counts the blocks every filesystem of this geometry
// spends before any entry: backups, bitmaps, inode tables, the journal
// and the resize inode's double-indirect block. mke2fs records the same
// sum, less the dind block, in s_overhead_clusters.
func (g *geometry) fixedOverhead() uint64 {
	n := uint64(len(backupGroups(g.groups))) * g.backupRegion()
	n += 2 * g.groups
	n += g.groups * g.itableBlocks
	n += g.journal
	return n
}
