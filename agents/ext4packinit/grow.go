package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// growSwitch, present, makes the guest grow / to its block device at boot
// (SPEC "Growing to the disk"). ext4pack installs it unless --no-grow;
// removing it in a guest stops the growth under every init.
const growSwitch = "/etc/banger/grow-root"

// The superblock fields grow reads (Documentation/filesystems/ext4/super.rst),
// at these offsets from the superblock's start, 1024 bytes into the device.
const (
	sbOffset          = 1024
	sbSize            = 1024
	sbBlocksCountLo   = 0x04
	sbFirstDataBlock  = 0x14
	sbLogBlockSize    = 0x18
	sbLogClusterSize  = 0x1C
	sbBlocksPerGroup  = 0x20
	sbInodesPerGroup  = 0x28
	sbMagic           = 0x38
	sbInodeSize       = 0x58
	sbFeatureCompat   = 0x5C
	sbFeatureIncompat = 0x60
	sbFeatureROCompat = 0x64
	sbReservedGDT     = 0xCE
	sbDescSize        = 0xFE
	sbBlocksCountHi   = 0x150

	ext4Magic = 0xEF53

	compatResizeInode  = 0x0010
	compatSparseSuper2 = 0x0200
	incompatMetaBG     = 0x0010
	incompat64bit      = 0x0080
	roCompatBigalloc   = 0x0200
	minDescSize        = 32
	maxBlocksNo64bit   = 1<<32 - 1
	maxInodesCount     = 1<<32 - 1
)

// superblock is what grow needs of an ext4 superblock.
type superblock struct {
	blocks         uint64 // s_blocks_count
	blockSize      uint64
	clusterRatio   uint64 // blocks per cluster: 1 without bigalloc
	firstDataBlock uint64
	blocksPerGroup uint64
	inodesPerGroup uint64
	inodeSize      uint64
	descSize       uint64
	reservedGDT    uint64
	compat         uint32
	incompat       uint32
	roCompat       uint32
}

// errNotExt4 is returned by parseSuperblock for a device whose superblock
// has not ext4's magic.
var errNotExt4 = errors.New("no ext4 superblock")

// parseSuperblock reads the fields grow needs from b, the 1024 bytes of a
// superblock, and checks that they are sane enough to compute with.
func parseSuperblock(b []byte) (superblock, error) {
	if len(b) < sbSize {
		return superblock{}, fmt.Errorf("superblock: %d bytes, want %d", len(b), sbSize)
	}
	le := binary.LittleEndian
	if le.Uint16(b[sbMagic:]) != ext4Magic {
		return superblock{}, errNotExt4
	}
	s := superblock{
		blocks:         uint64(le.Uint32(b[sbBlocksCountLo:])),
		firstDataBlock: uint64(le.Uint32(b[sbFirstDataBlock:])),
		blocksPerGroup: uint64(le.Uint32(b[sbBlocksPerGroup:])),
		inodesPerGroup: uint64(le.Uint32(b[sbInodesPerGroup:])),
		inodeSize:      uint64(le.Uint16(b[sbInodeSize:])),
		reservedGDT:    uint64(le.Uint16(b[sbReservedGDT:])),
		descSize:       minDescSize,
		clusterRatio:   1,
		compat:         le.Uint32(b[sbFeatureCompat:]),
		incompat:       le.Uint32(b[sbFeatureIncompat:]),
		roCompat:       le.Uint32(b[sbFeatureROCompat:]),
	}
	logBlock := le.Uint32(b[sbLogBlockSize:])
	if logBlock > 6 { // 1 KiB << 6 = 64 KiB, ext4's largest block
		return superblock{}, fmt.Errorf("superblock: block size 1024<<%d", logBlock)
	}
	s.blockSize = 1024 << logBlock
	if s.incompat&incompat64bit != 0 {
		s.blocks |= uint64(le.Uint32(b[sbBlocksCountHi:])) << 32
		s.descSize = uint64(le.Uint16(b[sbDescSize:]))
	}
	if s.roCompat&roCompatBigalloc != 0 {
		logCluster := le.Uint32(b[sbLogClusterSize:])
		if logCluster < logBlock || logCluster-logBlock > 16 {
			return superblock{}, fmt.Errorf("superblock: cluster size 1024<<%d with blocks of 1024<<%d", logCluster, logBlock)
		}
		s.clusterRatio = 1 << (logCluster - logBlock)
	}
	switch {
	case s.blocks == 0 || s.blocksPerGroup == 0 || s.inodesPerGroup == 0:
		return superblock{}, fmt.Errorf("superblock: %d blocks, %d blocks and %d inodes a group", s.blocks, s.blocksPerGroup, s.inodesPerGroup)
	case s.descSize < minDescSize || s.descSize > s.blockSize || s.descSize&(s.descSize-1) != 0:
		return superblock{}, fmt.Errorf("superblock: group descriptors of %d bytes", s.descSize)
	case s.inodeSize < 128 || s.inodeSize > s.blockSize:
		return superblock{}, fmt.Errorf("superblock: inodes of %d bytes", s.inodeSize)
	}
	return s, nil
}

// growTarget returns the block count to ask the kernel's online resize for,
// given the block device's size in bytes: the device's whole blocks, less
// what the kernel's ext4_resize_fs would refuse or trim (fs/ext4/resize.c),
// so that the answer is exactly what the kernel makes of it. That matters:
// the kernel logs every resize it is asked for, even one that changes
// nothing, and a guest whose size is settled must say nothing at boot. The
// result equals s.blocks when there is nothing to do. A device smaller than
// the filesystem, or a filesystem the kernel cannot grow online, is an
// error.
func growTarget(s superblock, deviceBytes uint64) (uint64, error) {
	target := deviceBytes / s.blockSize
	if target < s.blocks {
		return 0, fmt.Errorf("the device (%d bytes) is smaller than the filesystem (%d bytes)", deviceBytes, s.blocks*s.blockSize)
	}
	if s.incompat&incompat64bit == 0 {
		target = min(target, maxBlocksNo64bit)
	}
	// bigalloc: the kernel rounds down to a whole cluster.
	target &^= s.clusterRatio - 1
	// The inode count is 32 bits: the kernel refuses a last group whose
	// number reaches 2^32-1 / inodes per group.
	if maxGroups := maxInodesCount / s.inodesPerGroup; target > s.firstDataBlock+maxGroups*s.blocksPerGroup {
		target = s.firstDataBlock + maxGroups*s.blocksPerGroup
	}
	if target <= s.blocks {
		return s.blocks, nil
	}
	// The new last group must hold its metadata with room to spare, or the
	// kernel leaves it out: its first block, plus its superblock backup,
	// group descriptors and reserved GDT blocks, two bitmaps, an inode
	// table and a cluster, must stay below the end. This counts the
	// backup and the whole GDT whether or not the group has them, so
	// that it never keeps a group the kernel would drop (it may drop one
	// the kernel would keep, a few MiB at most).
	lastGroup := (target - 1 - s.firstDataBlock) / s.blocksPerGroup
	oldLastGroup := (s.blocks - 1 - s.firstDataBlock) / s.blocksPerGroup
	if lastGroup > oldLastGroup {
		first := s.firstDataBlock + lastGroup*s.blocksPerGroup
		descPerBlock := s.blockSize / s.descSize
		gdt := (lastGroup + descPerBlock) / descPerBlock
		itable := (s.inodesPerGroup*s.inodeSize + s.blockSize - 1) / s.blockSize
		if first+1+gdt+s.reservedGDT+2+itable+s.clusterRatio >= target {
			target = first
		}
	}
	if target <= s.blocks {
		return s.blocks, nil
	}
	if s.compat&compatSparseSuper2 != 0 {
		return 0, errors.New("the kernel does not resize a filesystem with sparse_super2 online")
	}
	if s.compat&compatResizeInode == 0 && s.incompat&incompatMetaBG == 0 {
		return 0, errors.New("the filesystem has neither resize_inode nor meta_bg, so the kernel cannot grow it online")
	}
	return target, nil
}

// readSuperblock reads and parses the superblock of the device f.
func readSuperblock(f *os.File) (superblock, error) {
	b := make([]byte, sbSize)
	if _, err := f.ReadAt(b, sbOffset); err != nil {
		return superblock{}, fmt.Errorf("reading the superblock of %s: %w", f.Name(), err)
	}
	sb, err := parseSuperblock(b)
	if err != nil {
		return superblock{}, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return sb, nil
}

// humanBytes prints n in the largest binary unit that keeps one decimal.
func humanBytes(n uint64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
