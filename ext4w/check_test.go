package ext4w

// check_test.go is the image self-check: a pure-Go reader that verifies
// an image's structure the way e2fsck's passes do (superblock, group
// descriptors, bitmaps, inodes and extent trees, directories and htrees,
// xattr blocks, link counts, and that every block has exactly one
// owner). It is the fuzzers' oracle, so it reads only metadata blocks,
// never file data, and takes milliseconds on a small image. e2fsck stays
// the final judge; this check is what runs on every fuzz output.
//
// It is written from the kernel's Documentation/filesystems/ext4 and
// e2fsprogs' behaviour, not from the writer's code: the checksum and
// hash helpers here are its own, except dirHash (half-MD4), which
// TestDirHashMatchesDebugfs ties to debugfs.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"testing"
)

// maxProblems bounds the report: one corruption can cascade into many.
const maxProblems = 40

// checkImage fails t with every problem selfCheck finds in the image.
func checkImage(t testing.TB, path string) {
	t.Helper()
	if err := selfCheck(path); err != nil {
		t.Fatalf("self-check of %s:\n%v", path, err)
	}
}

// selfCheck verifies the image at path and returns nil, or an error
// listing the problems found (at most maxProblems of them).
func selfCheck(path string) error {
	c, err := readImage(path)
	if c != nil {
		c.close()
	}
	return err
}

// ckTable is the Castagnoli table, for the raw crc32c metadata_csum uses.
var ckTable = crc32.MakeTable(crc32.Castagnoli)

// ckCRC is crc32c without the pre- and post-inversion Go's crc32 applies:
// the kernel's ext4_chksum(seed, data).
func ckCRC(seed uint32, p ...[]byte) uint32 {
	c := seed
	for _, b := range p {
		c = ^crc32.Update(^c, ckTable, b)
	}
	return c
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// checker is one run of the self-check.
type checker struct {
	f        io.ReaderAt
	fileSize int64
	raw      []byte // the primary superblock
	sb       Superblock
	blocks   uint64
	groups   uint64
	ipg      uint64
	itb      uint64 // inode table blocks per group
	gdtBlks  uint64
	seed     uint32 // metadata_csum seed: crc32c(~0, uuid)
	hseed    [4]uint32
	gds      []GroupDesc
	gdRaw    []byte
	iused    [][]byte // inode bitmaps as read (nil: INODE_UNINIT)
	owner    []int32  // by block: 0 free, else an index into owners + 1
	owners   []string
	inodes   map[uint32]*ckInode
	xblocks  map[uint64]*ckXattrBlock
	problems []string
	more     int
	close    func() error
}

// ckInode is what the check learnt about a used inode.
type ckInode struct {
	ino        uint32
	raw        []byte
	mode       uint16
	links      uint16
	uid, gid   uint32
	size       uint64
	flags      uint32
	iblocks    uint64 // i_blocks in 512-byte units
	exts       []run  // data, by logical block
	treeBlocks int
	xattrBlock uint64
	xattrs     map[string][]byte
	linkTarget string
	devMajor   uint32
	devMinor   uint32
	// Directory state.
	ents     []ckDirent
	dotdot   uint32
	names    int    // directory entries naming this inode
	subdirs  int    // for directories
	parentOf uint32 // the directory whose entry names this directory
}

type ckDirent struct {
	name string
	ino  uint32
	ft   uint8
}

type ckXattrBlock struct {
	refcount uint32
	users    uint32
	xattrs   map[string][]byte
}

func (c *checker) problem(format string, args ...any) {
	if len(c.problems) >= maxProblems {
		c.more++
		return
	}
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	s := strings.Join(c.problems, "\n")
	if c.more > 0 {
		s += fmt.Sprintf("\n(and %d more)", c.more)
	}
	return errors.New(s)
}

// errStop ends the check early when going on would only report noise
// (no valid superblock, say).
var errStop = errors.New("stop")

func (c *checker) read(blk, n uint64) ([]byte, error) {
	if blk+n > c.blocks || blk+n < blk {
		return nil, fmt.Errorf("blocks %d+%d are beyond the filesystem's %d", blk, n, c.blocks)
	}
	b := make([]byte, n*blockSize)
	if _, err := c.f.ReadAt(b, int64(blk)*blockSize); err != nil {
		return nil, fmt.Errorf("reading block %d: %w", blk, err)
	}
	return b, nil
}

// claim records that owner uses blocks [blk, blk+n). Every block may
// have only one owner (xattr blocks are claimed once, by their first
// user).
func (c *checker) claim(blk, n uint64, owner string) {
	if blk >= c.blocks || blk+n > c.blocks || blk+n < blk {
		c.problem("%s: blocks %d..%d are outside the filesystem (%d blocks)", owner, blk, blk+n-1, c.blocks)
		return
	}
	id := int32(len(c.owners)) + 1
	c.owners = append(c.owners, owner)
	reported := 0
	for b := blk; b < blk+n; b++ {
		if o := c.owner[b]; o != 0 {
			if reported < 3 {
				c.problem("block %d is claimed twice: by %s and by %s", b, c.owners[o-1], owner)
			}
			reported++
			continue
		}
		c.owner[b] = id
	}
}

// readImage runs every check. The checker it returns keeps the image
// open, for ReadBack to read file data; the caller calls its close.
func readImage(path string) (*checker, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	c := &checker{f: f, close: f.Close, fileSize: st.Size(), inodes: map[uint32]*ckInode{}, xblocks: map[uint64]*ckXattrBlock{}}
	for _, step := range []func() error{c.checkSuper, c.checkGroups, c.checkBitmaps, c.checkInodes, c.checkDirs, c.checkLinks, c.checkOwners} {
		if err := step(); err != nil {
			if !errors.Is(err, errStop) {
				c.problem("%v", err)
			}
			break
		}
	}
	return c, c.err()
}

// The feature set SPEC fixes: Debian bookworm's mke2fs defaults.
const (
	ckCompat   = uint32(CompatHasJournal | CompatExtAttr | CompatResizeInode | CompatDirIndex)
	ckIncompat = uint32(IncompatFiletype | IncompatExtents | Incompat64bit | IncompatFlexBG)
	ckROCompat = uint32(ROCompatSparseSuper | ROCompatLargeFile | ROCompatHugeFile | ROCompatDirNlink |
		ROCompatExtraIsize | ROCompatMetadataCsum)
)

// checkSuper checks the primary superblock: magic, checksum, the
// geometry SPEC fixes and the counts that follow from it.
func (c *checker) checkSuper() error {
	c.raw = make([]byte, superblockSize)
	if _, err := c.f.ReadAt(c.raw, superblockOffset); err != nil {
		c.problem("reading the superblock: %v", err)
		return errStop
	}
	if _, err := binary.Decode(c.raw, binary.LittleEndian, &c.sb); err != nil {
		c.problem("decoding the superblock: %v", err)
		return errStop
	}
	sb := &c.sb
	if sb.Magic != superMagic {
		c.problem("superblock magic %#x, want %#x", sb.Magic, superMagic)
		return errStop
	}
	if sum := ckCRC(^uint32(0), c.raw[:0x3FC]); sum != sb.Checksum {
		c.problem("superblock checksum %#x, computed %#x", sb.Checksum, sum)
	}
	if sb.FeatureCompat != ckCompat || sb.FeatureIncompat != ckIncompat || sb.FeatureROCompat != ckROCompat {
		c.problem("features %#x/%#x/%#x, want %#x/%#x/%#x", sb.FeatureCompat, sb.FeatureIncompat, sb.FeatureROCompat,
			ckCompat, ckIncompat, ckROCompat)
	}
	type field struct {
		name      string
		got, want uint64
	}
	for _, f := range []field{
		{"s_log_block_size", uint64(sb.LogBlockSize), blockSizeLog},
		{"s_log_cluster_size", uint64(sb.LogClusterSize), blockSizeLog},
		{"s_first_data_block", uint64(sb.FirstDataBlock), 0},
		{"s_blocks_per_group", uint64(sb.BlocksPerGroup), blocksPerGroup},
		{"s_clusters_per_group", uint64(sb.ClustersPerGroup), blocksPerGroup},
		{"s_inode_size", uint64(sb.InodeSize), inodeSize},
		{"s_desc_size", uint64(sb.DescSize), descSize},
		{"s_rev_level", uint64(sb.RevLevel), revDynamic},
		{"s_first_ino", uint64(sb.FirstIno), firstIno},
		{"s_min_extra_isize", uint64(sb.MinExtraIsize), extraIsize},
		{"s_want_extra_isize", uint64(sb.WantExtraIsize), extraIsize},
		{"s_journal_inum", uint64(sb.JournalInum), inoJournal},
		{"s_checksum_type", uint64(sb.ChecksumType), checksumCRC32C},
		{"s_def_hash_version", uint64(sb.DefHashVersion), hashHalfMD4},
		{"s_log_groups_per_flex", uint64(sb.LogGroupsPerFlex), logGroupsFlex},
		{"s_state", uint64(sb.State), stateClean},
		// The hash signedness is pinned (SPEC): signed, never unsigned.
		{"s_flags", uint64(sb.Flags), flagSignedHash},
		{"s_mnt_count", uint64(sb.MntCount), 0},
		{"s_first_meta_bg", uint64(sb.FirstMetaBg), 0},
	} {
		if f.got != f.want {
			c.problem("superblock %s is %d, want %d", f.name, f.got, f.want)
		}
	}
	if sb.LogBlockSize != blockSizeLog || sb.BlocksPerGroup != blocksPerGroup || sb.InodeSize != inodeSize || sb.DescSize != descSize {
		return errStop // the rest would read garbage
	}
	c.blocks = uint64(sb.BlocksCountHi)<<32 | uint64(sb.BlocksCountLo)
	c.ipg = uint64(sb.InodesPerGroup)
	if c.blocks == 0 || c.ipg == 0 || c.ipg > blocksPerGroup || c.ipg%inodesPerBlock != 0 {
		c.problem("superblock: %d blocks, %d inodes per group", c.blocks, c.ipg)
		return errStop
	}
	if want := int64(c.blocks) * blockSize; c.fileSize != want {
		c.problem("the image file is %d bytes; %d blocks make %d", c.fileSize, c.blocks, want)
		if c.fileSize < want {
			return errStop
		}
	}
	c.groups = ceilDiv(c.blocks, blocksPerGroup)
	c.itb = c.ipg / inodesPerBlock
	c.gdtBlks = ceilDiv(c.groups*descSize, blockSize)
	if got, want := uint64(sb.InodesCount), c.groups*c.ipg; got != want {
		c.problem("s_inodes_count %d, want groups x inodes per group = %d", got, want)
	}
	if uint64(sb.InodesCount) >= 1<<32 || c.groups*c.ipg >= 1<<32 {
		return errStop
	}
	if r := uint64(sb.RBlocksCountHi)<<32 | uint64(sb.RBlocksCountLo); r > c.blocks {
		c.problem("%d reserved blocks in a filesystem of %d", r, c.blocks)
	}
	if uint64(sb.ReservedGDTBlocks) > addrPerBlock {
		c.problem("s_reserved_gdt_blocks %d is more than the resize inode maps", sb.ReservedGDTBlocks)
	}
	c.seed = ckCRC(^uint32(0), sb.UUID[:])
	c.hseed = sb.HashSeed
	c.owner = make([]int32, c.blocks)
	return nil
}

// backupGroupsOf lists the groups holding superblock and GDT copies
// under sparse_super: 0, 1 and the powers of 3, 5 and 7.
func backupGroupsOf(groups uint64) []uint64 {
	var out []uint64
	for g := uint64(0); g < groups; g++ {
		if g <= 1 {
			out = append(out, g)
			continue
		}
		for _, base := range []uint64{3, 5, 7} {
			p := base
			for p < g {
				p *= base
			}
			if p == g {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// checkGroups checks the group descriptors (checksums, locations, flags)
// and the superblock and GDT backups, and claims the fixed metadata.
func (c *checker) checkGroups() error {
	raw, err := c.read(1, c.gdtBlks)
	if err != nil {
		c.problem("GDT: %v", err)
		return errStop
	}
	c.gdRaw = raw[:c.groups*descSize]
	c.gds = make([]GroupDesc, c.groups)
	rsv := uint64(c.sb.ReservedGDTBlocks)
	for _, bg := range backupGroupsOf(c.groups) {
		base := bg * blocksPerGroup
		c.claim(base, 1+c.gdtBlks+rsv, fmt.Sprintf("group %d's superblock, GDT and reserved GDT", bg))
		if bg == 0 {
			continue
		}
		b, err := c.read(base, 1+c.gdtBlks)
		if err != nil {
			c.problem("backup of group %d: %v", bg, err)
			continue
		}
		c.checkBackupSuper(bg, b[:superblockSize])
		if string(b[blockSize:blockSize+len(c.gdRaw)]) != string(c.gdRaw) {
			c.problem("group %d's GDT backup differs from the primary", bg)
		}
	}
	for g := uint64(0); g < c.groups; g++ {
		d := c.gdRaw[g*descSize : (g+1)*descSize]
		gd := &c.gds[g]
		if _, err := binary.Decode(d, binary.LittleEndian, gd); err != nil {
			return err
		}
		// ext4_group_desc_csum: crc32c of the group number and the
		// descriptor with bg_checksum read as zero, low 16 bits.
		sum := ckCRC(c.seed, le32(uint32(g)), d[:0x1E], []byte{0, 0}, d[0x20:])
		if uint16(sum) != gd.Checksum {
			c.problem("group %d: descriptor checksum %#x, computed %#x", g, gd.Checksum, uint16(sum))
		}
		if gd.Flags&bgItableZeroed == 0 {
			c.problem("group %d: ITABLE_ZEROED is not set (SPEC: the first mount must not zero inode tables)", g)
		}
		if gd.Flags&bgBlockUninit != 0 {
			c.problem("group %d: BLOCK_UNINIT is set; this writer writes every block bitmap", g)
		}
		if gd.Flags&^(bgInodeUninit|bgBlockUninit|bgItableZeroed) != 0 {
			c.problem("group %d: unknown flags %#x", g, gd.Flags)
		}
		if g == 0 && gd.Flags&bgInodeUninit != 0 {
			c.problem("group 0 has INODE_UNINIT, yet the root inode is there")
		}
		bb := uint64(gd.BlockBitmapHi)<<32 | uint64(gd.BlockBitmapLo)
		ib := uint64(gd.InodeBitmapHi)<<32 | uint64(gd.InodeBitmapLo)
		it := uint64(gd.InodeTableHi)<<32 | uint64(gd.InodeTableLo)
		c.claim(bb, 1, fmt.Sprintf("group %d's block bitmap", g))
		c.claim(ib, 1, fmt.Sprintf("group %d's inode bitmap", g))
		c.claim(it, c.itb, fmt.Sprintf("group %d's inode table", g))
		if gd.ExcludeBitmapLo != 0 || gd.ExcludeBitmapHi != 0 || gd.Reserved != 0 {
			c.problem("group %d: reserved descriptor fields are not zero", g)
		}
	}
	return nil
}

// checkBackupSuper compares a backup superblock with the primary: only
// s_block_group_nr and the checksum may differ.
func (c *checker) checkBackupSuper(bg uint64, b []byte) {
	if sum := ckCRC(^uint32(0), b[:0x3FC]); sum != binary.LittleEndian.Uint32(b[0x3FC:]) {
		c.problem("group %d's backup superblock has a bad checksum", bg)
	}
	if nr := binary.LittleEndian.Uint16(b[0x5A:]); uint64(nr) != bg {
		c.problem("group %d's backup superblock says s_block_group_nr %d", bg, nr)
	}
	a := append([]byte(nil), b[:0x3FC]...)
	p := append([]byte(nil), c.raw[:0x3FC]...)
	a[0x5A], a[0x5B], p[0x5A], p[0x5B] = 0, 0, 0, 0
	if string(a) != string(p) {
		c.problem("group %d's backup superblock differs from the primary", bg)
	}
}

// groupBlocksOf is the number of blocks in group g (the last may be short).
func (c *checker) groupBlocksOf(g uint64) uint64 {
	if g == c.groups-1 && c.blocks%blocksPerGroup != 0 {
		return c.blocks % blocksPerGroup
	}
	return blocksPerGroup
}

func bitSet(bm []byte, i uint64) bool { return bm[i/8]&(1<<(i%8)) != 0 }

// checkBitmaps checks each group's bitmaps: checksums, padding bits and
// free counts against the descriptors and the superblock. Which blocks
// are in use is compared with their owners at the end.
func (c *checker) checkBitmaps() error {
	var freeBlocks, freeInodes uint64
	c.iused = make([][]byte, c.groups)
	for g := uint64(0); g < c.groups; g++ {
		gd := &c.gds[g]
		bb := uint64(gd.BlockBitmapHi)<<32 | uint64(gd.BlockBitmapLo)
		bm, err := c.read(bb, 1)
		if err != nil {
			c.problem("group %d block bitmap: %v", g, err)
			return errStop
		}
		if sum := ckCRC(c.seed, bm); uint16(sum) != gd.BlockBitmapCsumLo || uint16(sum>>16) != gd.BlockBitmapCsumHi {
			c.problem("group %d: block bitmap checksum %#x, computed %#x", g,
				uint32(gd.BlockBitmapCsumHi)<<16|uint32(gd.BlockBitmapCsumLo), sum)
		}
		n := c.groupBlocksOf(g)
		free := uint64(0)
		for i := uint64(0); i < n; i++ {
			if !bitSet(bm, i) {
				free++
			}
		}
		for i := n; i < blocksPerGroup; i++ {
			if !bitSet(bm, i) {
				c.problem("group %d: block bitmap padding bit %d (past the end of the filesystem) is not set", g, i)
				break
			}
		}
		if got := uint64(gd.FreeBlocksCountHi)<<16 | uint64(gd.FreeBlocksCountLo); got != free {
			c.problem("group %d: descriptor says %d free blocks, the bitmap %d", g, got, free)
		}
		freeBlocks += free

		unused := uint64(gd.ItableUnusedHi)<<16 | uint64(gd.ItableUnusedLo)
		gFree := uint64(gd.FreeInodesCountHi)<<16 | uint64(gd.FreeInodesCountLo)
		if unused > c.ipg {
			c.problem("group %d: bg_itable_unused %d is more than its %d inodes", g, unused, c.ipg)
			unused = c.ipg
		}
		var ifree uint64
		if gd.Flags&bgInodeUninit != 0 {
			// The kernel takes the bitmap as zeros and reads nothing.
			if unused != c.ipg {
				c.problem("group %d: INODE_UNINIT with bg_itable_unused %d, want %d", g, unused, c.ipg)
			}
			ifree = c.ipg
		} else {
			ib := uint64(gd.InodeBitmapHi)<<32 | uint64(gd.InodeBitmapLo)
			im, err := c.read(ib, 1)
			if err != nil {
				c.problem("group %d inode bitmap: %v", g, err)
				return errStop
			}
			if sum := ckCRC(c.seed, im[:c.ipg/8]); uint16(sum) != gd.InodeBitmapCsumLo || uint16(sum>>16) != gd.InodeBitmapCsumHi {
				c.problem("group %d: inode bitmap checksum %#x, computed %#x", g,
					uint32(gd.InodeBitmapCsumHi)<<16|uint32(gd.InodeBitmapCsumLo), sum)
			}
			for i := c.ipg; i < blocksPerGroup; i++ {
				if !bitSet(im, i) {
					c.problem("group %d: inode bitmap padding bit %d is not set", g, i)
					break
				}
			}
			for i := uint64(0); i < c.ipg; i++ {
				switch {
				case !bitSet(im, i):
					ifree++
				case i >= c.ipg-unused:
					c.problem("inode %d is in use but in group %d's bg_itable_unused tail", g*c.ipg+i+1, g)
				}
			}
			c.iused[g] = im
		}
		if gFree != ifree {
			c.problem("group %d: descriptor says %d free inodes, the bitmap %d", g, gFree, ifree)
		}
		freeInodes += ifree
	}
	if got := uint64(c.sb.FreeBlocksCountHi)<<32 | uint64(c.sb.FreeBlocksCountLo); got != freeBlocks {
		c.problem("superblock says %d free blocks, the bitmaps %d", got, freeBlocks)
	}
	if got := uint64(c.sb.FreeInodesCount); got != freeInodes {
		c.problem("superblock says %d free inodes, the bitmaps %d", got, freeInodes)
	}
	return nil
}

// inodeUsed reports whether ino is marked in use in its group's bitmap.
func (c *checker) inodeUsed(ino uint32) bool {
	if ino == 0 || uint64(ino) > c.groups*c.ipg {
		return false
	}
	g, i := uint64(ino-1)/c.ipg, uint64(ino-1)%c.ipg
	return c.iused[g] != nil && bitSet(c.iused[g], i)
}

// checkOwners compares the owners found with the block bitmaps: a block
// is in use exactly when something owns it.
func (c *checker) checkOwners() error {
	reported := 0
	for g := uint64(0); g < c.groups; g++ {
		gd := &c.gds[g]
		bm, err := c.read(uint64(gd.BlockBitmapHi)<<32|uint64(gd.BlockBitmapLo), 1)
		if err != nil {
			return err
		}
		start := g * blocksPerGroup
		for i := uint64(0); i < c.groupBlocksOf(g); i++ {
			o := c.owner[start+i]
			switch used := bitSet(bm, i); {
			case used && o == 0:
				c.problem("block %d is marked in use, but nothing owns it", start+i)
				reported++
			case !used && o != 0:
				c.problem("block %d belongs to %s, but the bitmap says it is free", start+i, c.owners[o-1])
				reported++
			}
			if reported >= 5 {
				return nil
			}
		}
	}
	return nil
}
