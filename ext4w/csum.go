package ext4w

import (
	"encoding/binary"
	"hash/crc32"
)

// castagnoli is the crc32c table that metadata_csum uses (s_checksum_type 1).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c continues the kernel's raw crc32c (no pre- or post-inversion, as
// lib/crc32 and e2fsprogs' ext2fs_crc32c_le compute it). Go's crc32.Update
// inverts on the way in and out, so undo both.
func crc32c(crc uint32, p []byte) uint32 {
	return ^crc32.Update(^crc, castagnoli, p)
}

func crc32cU32(crc uint32, v uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return crc32c(crc, b[:])
}

func crc32cU64(crc uint32, v uint64) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return crc32c(crc, b[:])
}

// inodeSeed is the per-inode seed used by inode, extent and directory
// checksums: crc32c(fs seed, inode number, generation) (ext4_inode_csum_seed).
func inodeSeed(fsSeed, ino, gen uint32) uint32 {
	return crc32cU32(crc32cU32(fsSeed, ino), gen)
}
