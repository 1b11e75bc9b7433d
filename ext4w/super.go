package ext4w

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNotExt4 means the bytes at the superblock's place are not an ext4
// superblock.
var ErrNotExt4 = errors.New("ext4w: not an ext4 filesystem")

// ReadSuperblock reads and checks the primary superblock of an image.
func ReadSuperblock(r io.ReaderAt) (*Superblock, error) {
	raw := make([]byte, superblockSize)
	if _, err := r.ReadAt(raw, superblockOffset); err != nil {
		return nil, fmt.Errorf("ext4w: reading the superblock: %w", err)
	}
	var sb Superblock
	if _, err := binary.Decode(raw, binary.LittleEndian, &sb); err != nil {
		return nil, fmt.Errorf("ext4w: decoding the superblock: %w", err)
	}
	if sb.Magic != superMagic {
		return nil, ErrNotExt4
	}
	if sb.FeatureROCompat&uint32(ROCompatMetadataCsum) != 0 {
		if sum := crc32c(^uint32(0), raw[:0x3FC]); sum != sb.Checksum {
			return nil, fmt.Errorf("%w: superblock checksum %#x, computed %#x", ErrNotExt4, sb.Checksum, sum)
		}
	}
	return &sb, nil
}

// BlockSize is the filesystem's block size in bytes.
func (sb *Superblock) BlockSize() uint64 { return 1024 << sb.LogBlockSize }

// BlocksCount is the number of blocks in the filesystem.
func (sb *Superblock) BlocksCount() uint64 {
	return uint64(sb.BlocksCountHi)<<32 | uint64(sb.BlocksCountLo)
}

// FreeBlocks is the number of free blocks.
func (sb *Superblock) FreeBlocks() uint64 {
	return uint64(sb.FreeBlocksCountHi)<<32 | uint64(sb.FreeBlocksCountLo)
}

var featureNames = []struct {
	word int // 0 compat, 1 incompat, 2 ro_compat
	bit  uint32
	name string
}{
	{0, uint32(CompatHasJournal), "has_journal"},
	{0, uint32(CompatExtAttr), "ext_attr"},
	{0, uint32(CompatResizeInode), "resize_inode"},
	{0, uint32(CompatDirIndex), "dir_index"},
	{1, uint32(IncompatFiletype), "filetype"},
	{1, 0x0004, "needs_recovery"},
	{1, uint32(IncompatExtents), "extent"},
	{1, uint32(Incompat64bit), "64bit"},
	{1, uint32(IncompatFlexBG), "flex_bg"},
	{1, 0x8000, "inline_data"},
	{2, uint32(ROCompatSparseSuper), "sparse_super"},
	{2, uint32(ROCompatLargeFile), "large_file"},
	{2, uint32(ROCompatHugeFile), "huge_file"},
	{2, uint32(ROCompatDirNlink), "dir_nlink"},
	{2, uint32(ROCompatExtraIsize), "extra_isize"},
	{2, uint32(ROCompatMetadataCsum), "metadata_csum"},
}

// Features names the feature flags set, in dumpe2fs's order, and the
// unknown bits as hex.
func (sb *Superblock) Features() []string {
	words := [3]uint32{sb.FeatureCompat, sb.FeatureIncompat, sb.FeatureROCompat}
	var out []string
	for _, f := range featureNames {
		if words[f.word]&f.bit != 0 {
			out = append(out, f.name)
			words[f.word] &^= f.bit
		}
	}
	for i, w := range words {
		if w != 0 {
			out = append(out, fmt.Sprintf("%s:%#x", [3]string{"compat", "incompat", "ro_compat"}[i], w))
		}
	}
	return out
}
