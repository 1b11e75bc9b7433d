package ext4w

import "encoding/binary"

// journalSuperblock is the first block of the internal journal, as
// e2fsprogs' ext2fs_create_journal_superblock2 writes it: a v2 jbd2
// superblock, big-endian, with no features, one user and the filesystem
// UUID. The rest of the journal is zeros, which the image leaves as holes.
func journalSuperblock(blocks uint64, uuid [16]byte) []byte {
	b := make([]byte, blockSize)
	be := binary.BigEndian
	be.PutUint32(b[0x00:], jbd2Magic)
	be.PutUint32(b[0x04:], jbd2SuperblockV)
	be.PutUint32(b[0x0C:], blockSize)
	be.PutUint32(b[0x10:], uint32(blocks))
	be.PutUint32(b[0x14:], 1) // s_first: the log starts after this block
	be.PutUint32(b[0x18:], 1) // s_sequence
	copy(b[0x30:], uuid[:])
	be.PutUint32(b[0x40:], 1) // s_nr_users
	return b
}
