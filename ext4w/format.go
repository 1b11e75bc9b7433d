package ext4w

// This file holds the on-disk records, as described by the Linux kernel's
// Documentation/filesystems/ext4/ (globals.rst, group_descr.rst,
// inodes.rst, ifork.rst, directory.rst, attributes.rst, journal.rst).
// Every multi-byte field is little-endian except in the jbd2 journal,
// which is big-endian. The hex comment on each field is its byte offset.
// No logic lives here; encode.go turns these into bytes.

// Geometry fixed by this writer (SPEC "The ext4 image").
const (
	blockSize      = 4096
	blockSizeLog   = 2 // s_log_block_size: block size is 1024 << 2
	inodeSize      = 256
	blocksPerGroup = 8 * blockSize // one block bitmap block covers a group
	descSize       = 64            // 64bit feature: full group descriptors
	descsPerBlock  = blockSize / descSize
	extraIsize     = 32 // i_extra_isize: up to and including i_projid
	logGroupsFlex  = 4  // flex_bg groups of 16, as mke2fs
	inodesPerBlock = blockSize / inodeSize
	addrPerBlock   = blockSize / 4 // block numbers in an indirect block

	superblockOffset = 1024 // the primary superblock's byte offset
	superblockSize   = 1024
)

// Reserved inode numbers (Documentation/filesystems/ext4/special_inodes.rst).
const (
	inoRoot      = 2
	inoResize    = 7
	inoJournal   = 8
	inoLostFound = 11
	firstIno     = 11 // s_first_ino: the first non-reserved inode
)

// Magic numbers.
const (
	superMagic      = 0xEF53
	extentMagic     = 0xF30A
	xattrMagic      = 0xEA020000
	jbd2Magic       = 0xC03B3998
	jbd2SuperblockV = 4 // JBD2_SUPERBLOCK_V2
	dirTailFileType = 0xDE
)

// FeatureCompat is s_feature_compat.
type FeatureCompat uint32

// FeatureIncompat is s_feature_incompat.
type FeatureIncompat uint32

// FeatureROCompat is s_feature_ro_compat.
type FeatureROCompat uint32

// The features SPEC asks for (Debian bookworm's mke2fs default set).
const (
	CompatHasJournal  FeatureCompat = 0x0004
	CompatExtAttr     FeatureCompat = 0x0008
	CompatResizeInode FeatureCompat = 0x0010
	CompatDirIndex    FeatureCompat = 0x0020

	IncompatFiletype FeatureIncompat = 0x0002
	IncompatExtents  FeatureIncompat = 0x0040
	Incompat64bit    FeatureIncompat = 0x0080
	IncompatFlexBG   FeatureIncompat = 0x0200

	ROCompatSparseSuper  FeatureROCompat = 0x0001
	ROCompatLargeFile    FeatureROCompat = 0x0002
	ROCompatHugeFile     FeatureROCompat = 0x0008
	ROCompatDirNlink     FeatureROCompat = 0x0020
	ROCompatExtraIsize   FeatureROCompat = 0x0040
	ROCompatMetadataCsum FeatureROCompat = 0x0400
)

// Superblock s_flags, s_default_mount_opts and other enumerations.
const (
	flagSignedHash   = 0x0001 // EXT2_FLAGS_SIGNED_HASH
	mountOptXattr    = 0x0004 // EXT4_DEFM_XATTR_USER
	mountOptACL      = 0x0008 // EXT4_DEFM_ACL
	stateClean       = 0x0001
	errorsContinue   = 1
	hashHalfMD4      = 1
	jnlBackupBlocks  = 1 // EXT3_JNL_BACKUP_BLOCKS
	checksumCRC32C   = 1
	creatorOSLinux   = 0
	revDynamic       = 1
	maxMountDisabled = 0xFFFF // s_max_mnt_count = -1
)

// Superblock is struct ext4_super_block (globals.rst), 1024 bytes.
type Superblock struct {
	InodesCount       uint32     // 0x00
	BlocksCountLo     uint32     // 0x04
	RBlocksCountLo    uint32     // 0x08
	FreeBlocksCountLo uint32     // 0x0C
	FreeInodesCount   uint32     // 0x10
	FirstDataBlock    uint32     // 0x14
	LogBlockSize      uint32     // 0x18
	LogClusterSize    uint32     // 0x1C
	BlocksPerGroup    uint32     // 0x20
	ClustersPerGroup  uint32     // 0x24
	InodesPerGroup    uint32     // 0x28
	Mtime             uint32     // 0x2C
	Wtime             uint32     // 0x30
	MntCount          uint16     // 0x34
	MaxMntCount       uint16     // 0x36
	Magic             uint16     // 0x38
	State             uint16     // 0x3A
	Errors            uint16     // 0x3C
	MinorRevLevel     uint16     // 0x3E
	Lastcheck         uint32     // 0x40
	Checkinterval     uint32     // 0x44
	CreatorOS         uint32     // 0x48
	RevLevel          uint32     // 0x4C
	DefResuid         uint16     // 0x50
	DefResgid         uint16     // 0x52
	FirstIno          uint32     // 0x54
	InodeSize         uint16     // 0x58
	BlockGroupNr      uint16     // 0x5A
	FeatureCompat     uint32     // 0x5C
	FeatureIncompat   uint32     // 0x60
	FeatureROCompat   uint32     // 0x64
	UUID              [16]byte   // 0x68
	VolumeName        [16]byte   // 0x78
	LastMounted       [64]byte   // 0x88
	AlgorithmUsage    uint32     // 0xC8
	PreallocBlocks    uint8      // 0xCC
	PreallocDirBlocks uint8      // 0xCD
	ReservedGDTBlocks uint16     // 0xCE
	JournalUUID       [16]byte   // 0xD0
	JournalInum       uint32     // 0xE0
	JournalDev        uint32     // 0xE4
	LastOrphan        uint32     // 0xE8
	HashSeed          [4]uint32  // 0xEC
	DefHashVersion    uint8      // 0xFC
	JnlBackupType     uint8      // 0xFD
	DescSize          uint16     // 0xFE
	DefaultMountOpts  uint32     // 0x100
	FirstMetaBg       uint32     // 0x104
	MkfsTime          uint32     // 0x108
	JnlBlocks         [17]uint32 // 0x10C
	BlocksCountHi     uint32     // 0x150
	RBlocksCountHi    uint32     // 0x154
	FreeBlocksCountHi uint32     // 0x158
	MinExtraIsize     uint16     // 0x15C
	WantExtraIsize    uint16     // 0x15E
	Flags             uint32     // 0x160
	RaidStride        uint16     // 0x164
	MmpInterval       uint16     // 0x166
	MmpBlock          uint64     // 0x168
	RaidStripeWidth   uint32     // 0x170
	LogGroupsPerFlex  uint8      // 0x174
	ChecksumType      uint8      // 0x175
	EncryptionLevel   uint8      // 0x176
	ReservedPad       uint8      // 0x177
	KbytesWritten     uint64     // 0x178
	SnapshotInum      uint32     // 0x180
	SnapshotID        uint32     // 0x184
	SnapshotRBlocks   uint64     // 0x188
	SnapshotList      uint32     // 0x190
	ErrorCount        uint32     // 0x194
	FirstErrorTime    uint32     // 0x198
	FirstErrorIno     uint32     // 0x19C
	FirstErrorBlock   uint64     // 0x1A0
	FirstErrorFunc    [32]byte   // 0x1A8
	FirstErrorLine    uint32     // 0x1C8
	LastErrorTime     uint32     // 0x1CC
	LastErrorIno      uint32     // 0x1D0
	LastErrorLine     uint32     // 0x1D4
	LastErrorBlock    uint64     // 0x1D8
	LastErrorFunc     [32]byte   // 0x1E0
	MountOpts         [64]byte   // 0x200
	UsrQuotaInum      uint32     // 0x240
	GrpQuotaInum      uint32     // 0x244
	OverheadClusters  uint32     // 0x248
	BackupBgs         [2]uint32  // 0x24C
	EncryptAlgos      [4]uint8   // 0x254
	EncryptPwSalt     [16]uint8  // 0x258
	LpfIno            uint32     // 0x268
	PrjQuotaInum      uint32     // 0x26C
	ChecksumSeed      uint32     // 0x270
	WtimeHi           uint8      // 0x274
	MtimeHi           uint8      // 0x275
	MkfsTimeHi        uint8      // 0x276
	LastcheckHi       uint8      // 0x277
	FirstErrorTimeHi  uint8      // 0x278
	LastErrorTimeHi   uint8      // 0x279
	FirstErrorErrcode uint8      // 0x27A
	LastErrorErrcode  uint8      // 0x27B
	Encoding          uint16     // 0x27C
	EncodingFlags     uint16     // 0x27E
	OrphanFileInum    uint32     // 0x280
	Reserved          [94]uint32 // 0x284
	Checksum          uint32     // 0x3FC
}

// Group descriptor bg_flags (group_descr.rst).
const (
	bgInodeUninit  = 0x0001
	bgBlockUninit  = 0x0002
	bgItableZeroed = 0x0004
)

// GroupDesc is struct ext4_group_desc with the 64bit fields, 64 bytes.
type GroupDesc struct {
	BlockBitmapLo     uint32 // 0x00
	InodeBitmapLo     uint32 // 0x04
	InodeTableLo      uint32 // 0x08
	FreeBlocksCountLo uint16 // 0x0C
	FreeInodesCountLo uint16 // 0x0E
	UsedDirsCountLo   uint16 // 0x10
	Flags             uint16 // 0x12
	ExcludeBitmapLo   uint32 // 0x14
	BlockBitmapCsumLo uint16 // 0x18
	InodeBitmapCsumLo uint16 // 0x1A
	ItableUnusedLo    uint16 // 0x1C
	Checksum          uint16 // 0x1E
	BlockBitmapHi     uint32 // 0x20
	InodeBitmapHi     uint32 // 0x24
	InodeTableHi      uint32 // 0x28
	FreeBlocksCountHi uint16 // 0x2C
	FreeInodesCountHi uint16 // 0x2E
	UsedDirsCountHi   uint16 // 0x30
	ItableUnusedHi    uint16 // 0x32
	ExcludeBitmapHi   uint32 // 0x34
	BlockBitmapCsumHi uint16 // 0x38
	InodeBitmapCsumHi uint16 // 0x3A
	Reserved          uint32 // 0x3C
}

// Inode i_mode file types (inodes.rst).
const (
	sIFIFO  = 0x1000
	sIFCHR  = 0x2000
	sIFDIR  = 0x4000
	sIFBLK  = 0x6000
	sIFREG  = 0x8000
	sIFLNK  = 0xA000
	sIFSOCK = 0xC000
)

// Inode i_flags.
const (
	inodeFlagIndex   = 0x00001000 // EXT4_INDEX_FL: hashed directory
	inodeFlagExtents = 0x00080000 // EXT4_EXTENTS_FL
)

// Inode is struct ext4_inode up to i_projid (inodes.rst): 128 bytes of the
// original inode plus extraIsize bytes; the rest of the 256-byte slot
// holds in-inode xattrs.
type Inode struct {
	Mode        uint16   // 0x00
	UID         uint16   // 0x02
	SizeLo      uint32   // 0x04
	Atime       uint32   // 0x08
	Ctime       uint32   // 0x0C
	Mtime       uint32   // 0x10
	Dtime       uint32   // 0x14
	GID         uint16   // 0x18
	LinksCount  uint16   // 0x1A
	BlocksLo    uint32   // 0x1C
	Flags       uint32   // 0x20
	Version     uint32   // 0x24 (l_i_version)
	Block       [60]byte // 0x28: extent tree root, device number or fast symlink
	Generation  uint32   // 0x64
	FileACLLo   uint32   // 0x68
	SizeHigh    uint32   // 0x6C
	ObsoFaddr   uint32   // 0x70
	BlocksHigh  uint16   // 0x74
	FileACLHigh uint16   // 0x76
	UIDHigh     uint16   // 0x78
	GIDHigh     uint16   // 0x7A
	ChecksumLo  uint16   // 0x7C
	Reserved    uint16   // 0x7E
	ExtraIsize  uint16   // 0x80
	ChecksumHi  uint16   // 0x82
	CtimeExtra  uint32   // 0x84
	MtimeExtra  uint32   // 0x88
	AtimeExtra  uint32   // 0x8C
	Crtime      uint32   // 0x90
	CrtimeExtra uint32   // 0x94
	VersionHi   uint32   // 0x98
	Projid      uint32   // 0x9C; in-inode xattrs start at 0xA0
}

// ExtentHeader is struct ext4_extent_header (ifork.rst), 12 bytes.
type ExtentHeader struct {
	Magic      uint16 // 0x0
	Entries    uint16 // 0x2
	Max        uint16 // 0x4
	Depth      uint16 // 0x6
	Generation uint32 // 0x8
}

// Extent is struct ext4_extent, a leaf entry, 12 bytes.
type Extent struct {
	Block   uint32 // 0x0: first logical block
	Len     uint16 // 0x4: at most maxExtentLen (initialized)
	StartHi uint16 // 0x6
	StartLo uint32 // 0x8
}

// ExtentIdx is struct ext4_extent_idx, an interior entry, 12 bytes.
type ExtentIdx struct {
	Block  uint32 // 0x0: first logical block covered
	LeafLo uint32 // 0x4
	LeafHi uint16 // 0x8
	Unused uint16 // 0xA
}

// ExtentTail is struct ext4_extent_tail, after the last possible entry.
type ExtentTail struct {
	Checksum uint32 // 0x0
}

const maxExtentLen = 32768 // EXT_INIT_MAX_LEN

// DirEntry is the fixed part of struct ext4_dir_entry_2 (directory.rst),
// 8 bytes; the name follows, and rec_len pads it to 4 bytes.
type DirEntry struct {
	Inode    uint32 // 0x0
	RecLen   uint16 // 0x4
	NameLen  uint8  // 0x6
	FileType uint8  // 0x7
}

// DirTail is struct ext4_dir_entry_tail, the last 12 bytes of a leaf
// directory block under metadata_csum.
type DirTail struct {
	ReservedZero1 uint32 // 0x0: looks like an unused entry's inode 0
	RecLen        uint16 // 0x4: 12
	ReservedZero2 uint8  // 0x6: name_len 0
	FileType      uint8  // 0x7: 0xDE
	Checksum      uint32 // 0x8
}

// Directory entry file types (EXT4_FT_*).
const (
	ftUnknown = 0
	ftRegular = 1
	ftDir     = 2
	ftChrdev  = 3
	ftBlkdev  = 4
	ftFifo    = 5
	ftSock    = 6
	ftSymlink = 7
)

// DxRoot is the fixed part of a hashed directory's first block
// (directory.rst "Hash Tree Directories"): fake "." and ".." entries,
// then dx_root_info, then the count/limit header, 0x20 bytes in all.
type DxRoot struct {
	DotInode       uint32  // 0x00
	DotRecLen      uint16  // 0x04: 12
	DotNameLen     uint8   // 0x06: 1
	DotFileType    uint8   // 0x07
	DotName        [4]byte // 0x08: ".\0\0\0"
	DotDotInode    uint32  // 0x0C
	DotDotRecLen   uint16  // 0x10: block size - 12
	DotDotNameLen  uint8   // 0x12: 2
	DotDotFileType uint8   // 0x13
	DotDotName     [4]byte // 0x14: "..\0\0"
	ReservedZero   uint32  // 0x18
	HashVersion    uint8   // 0x1C
	InfoLength     uint8   // 0x1D: 8
	IndirectLevels uint8   // 0x1E
	UnusedFlags    uint8   // 0x1F
	Limit          uint16  // 0x20
	Count          uint16  // 0x22
	Block          uint32  // 0x24: the block for hashes below the first entry; dx_entry{hash, block} pairs follow at 0x28
}

// DxNode is the fixed part of an interior htree block: an empty fake
// entry spanning the block, then count/limit, 0x10 bytes.
type DxNode struct {
	FakeInode    uint32 // 0x0: 0
	FakeRecLen   uint16 // 0x4: block size
	FakeNameLen  uint8  // 0x6
	FakeFileType uint8  // 0x7
	Limit        uint16 // 0x8
	Count        uint16 // 0xA
	Block        uint32 // 0xC
}

// DxTail is struct dx_tail, after the last possible dx_entry.
type DxTail struct {
	Reserved uint32 // 0x0
	Checksum uint32 // 0x4
}

// Xattr name indexes (attributes.rst): the prefix a name is stored without.
const (
	xattrIndexUser       = 1
	xattrIndexACLAccess  = 2
	xattrIndexACLDefault = 3
	xattrIndexTrusted    = 4
	xattrIndexSecurity   = 6
	xattrIndexSystem     = 7
)

// XattrBlockHeader is struct ext4_xattr_header, 32 bytes.
type XattrBlockHeader struct {
	Magic    uint32    // 0x00
	Refcount uint32    // 0x04
	Blocks   uint32    // 0x08: always 1
	Hash     uint32    // 0x0C
	Checksum uint32    // 0x10
	Reserved [3]uint32 // 0x14
}

// XattrEntry is the fixed part of struct ext4_xattr_entry, 16 bytes; the
// name follows, padded to 4 bytes.
type XattrEntry struct {
	NameLen   uint8  // 0x0
	NameIndex uint8  // 0x1
	ValueOffs uint16 // 0x2
	ValueInum uint32 // 0x4
	ValueSize uint32 // 0x8
	Hash      uint32 // 0xC; the name starts at 0x10
}

// JournalSuperblock is journal_superblock_t (journal.rst), big-endian,
// up to and including s_users[] for one user: 0x100 + 16 bytes used.
type JournalSuperblock struct {
	Magic          uint32     // 0x00
	BlockType      uint32     // 0x04
	Sequence       uint32     // 0x08 (header)
	BlockSize      uint32     // 0x0C
	MaxLen         uint32     // 0x10
	First          uint32     // 0x14
	SequenceFirst  uint32     // 0x18: s_sequence
	Start          uint32     // 0x1C
	Errno          uint32     // 0x20
	FeatureCompat  uint32     // 0x24
	FeatureIncompt uint32     // 0x28
	FeatureROCompt uint32     // 0x2C
	UUID           [16]byte   // 0x30
	NrUsers        uint32     // 0x40
	DynSuper       uint32     // 0x44
	MaxTransaction uint32     // 0x48
	MaxTransData   uint32     // 0x4C
	ChecksumType   uint8      // 0x50
	Padding2       [3]byte    // 0x51
	NumFCBlocks    uint32     // 0x54
	Head           uint32     // 0x58
	Padding        [40]uint32 // 0x5C
	Checksum       uint32     // 0xFC
	Users          [16]byte   // 0x100: the first of 48 user UUIDs
}
