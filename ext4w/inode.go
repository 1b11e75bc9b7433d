package ext4w

import (
	"encoding/binary"
	"fmt"
	"time"
)

// FileType is the kind of entry Create makes.
type FileType uint8

// The entry types an ext4 image holds.
const (
	TypeRegular FileType = iota + 1
	TypeDir
	TypeSymlink
	TypeCharDev
	TypeBlockDev
	TypeFifo
	TypeSocket
)

func (t FileType) String() string {
	switch t {
	case TypeRegular:
		return "regular file"
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	case TypeCharDev:
		return "character device"
	case TypeBlockDev:
		return "block device"
	case TypeFifo:
		return "fifo"
	case TypeSocket:
		return "socket"
	}
	return fmt.Sprintf("FileType(%d)", uint8(t))
}

// fileFormat returns the i_mode type bits and the directory entry type.
func (t FileType) fileFormat() (mode uint16, ft uint8) {
	switch t {
	case TypeRegular:
		return sIFREG, ftRegular
	case TypeDir:
		return sIFDIR, ftDir
	case TypeSymlink:
		return sIFLNK, ftSymlink
	case TypeCharDev:
		return sIFCHR, ftChrdev
	case TypeBlockDev:
		return sIFBLK, ftBlkdev
	case TypeFifo:
		return sIFIFO, ftFifo
	case TypeSocket:
		return sIFSOCK, ftSock
	}
	return 0, ftUnknown
}

// File is the metadata of one entry, as Create takes it.
type File struct {
	Type     FileType
	Mode     uint32 // permission bits, setuid, setgid and sticky: 0o7777 at most
	Uid, Gid uint32
	// Size is the number of bytes Write will get (regular files only).
	Size int64
	// Linkname is a symlink's target.
	Linkname string
	// Devmajor and Devminor number a character or block device. ext4
	// holds majors below 4096 and minors below 2^20.
	Devmajor, Devminor uint32
	// Mtime is the modification time. Atime and Ctime default to it, and
	// Crtime (the birth time) too. Times from 1901 to 2446 fit, with
	// nanoseconds, but for 2310-2378, which e2fsck mistakes for times
	// before 1970; others are clamped with a warning.
	Atime, Mtime, Ctime, Crtime time.Time
	// Xattrs maps full attribute names ("user.x", "security.capability",
	// "trusted.y") to binary values.
	Xattrs map[string][]byte
}

// Limits from the on-disk format.
const (
	maxNameLen     = 255  // ext4_dir_entry_2.name_len is a byte
	maxSymlinkLen  = 4095 // PATH_MAX - 1: the kernel refuses longer targets
	fastSymlinkMax = 59   // targets shorter than i_block's 60 bytes live in it
	maxDevMajor    = 1<<12 - 1
	maxDevMinor    = 1<<20 - 1
	maxLinks       = 65000   // EXT4_LINK_MAX
	maxFileBlocks  = 1 << 32 // logical block numbers are 32-bit: 16 TiB
)

// timestamp is seconds and nanoseconds since the Unix epoch.
type timestamp struct {
	sec  int64
	nsec uint32
}

// ext4 time range (inodes.rst "Inode Timestamps"): the 32-bit seconds
// field is signed, and two extra epoch bits extend it by up to 3 * 2^32,
// to 2446.
const (
	minTime = -1 << 31
	maxTime = 1<<31 - 1 + 3<<32
)

// Old kernels wrote epoch 3 for times before 1970, so e2fsck reports a
// time whose epoch is 3 and whose 32-bit field is negative as "likely
// pre-1970": 2310-04-04 to 2378-04-22. Times there are moved to the
// second before, so that the image stays clean.
const (
	suspectFrom = 3<<32 - 1<<31
	suspectTo   = 3 << 32
)

// clampTime turns t into a timestamp that ext4 can hold and e2fsck
// accepts; ok is false when it had to move it.
func clampTime(t time.Time) (ts timestamp, ok bool) {
	s := t.Unix()
	switch {
	case s < minTime:
		return timestamp{sec: minTime}, false
	case s > maxTime:
		return timestamp{sec: maxTime, nsec: 999999999}, false
	case s >= suspectFrom && s < suspectTo:
		return timestamp{sec: suspectFrom - 1, nsec: 999999999}, false
	}
	return timestamp{sec: s, nsec: uint32(t.Nanosecond())}, true
}

// encodeTime splits ts into the 32-bit field and its _extra field: the
// nanoseconds shifted by 2 and the epoch bits, computed as the kernel's
// ext4_encode_extra_time does, so that 1901-1970 gets epoch 0.
func encodeTime(ts timestamp) (lo uint32, extra uint32) {
	lo = uint32(int32(ts.sec))
	epoch := uint32((ts.sec-int64(int32(ts.sec)))>>32) & 3
	return lo, ts.nsec<<2 | epoch
}

// encodeDev returns i_block's first two words for a device, as the kernel's
// ext4 does: the old 16-bit encoding in word 0 when both numbers fit in a
// byte, else the new 32-bit encoding in word 1 (Linux's new_encode_dev).
func encodeDev(major, minor uint32) (old, new uint32) {
	if major < 256 && minor < 256 {
		return major<<8 | minor, 0
	}
	return 0, minor&0xff | major<<8 | (minor&^0xff)<<12
}

// inode is the in-memory form of one inode: metadata only, kept small
// because a rootfs has a million of them. Final inode numbers and all
// block addresses of metadata are assigned at Close.
type inode struct {
	mode        uint16 // type and permission bits
	defaultTime bool   // made by the writer: times resolved at Close
	links       uint32
	uid         uint32
	gid         uint32
	ino         uint32 // final inode number, at Close
	tree        uint32 // first of the extent tree's blocks, at Close
	xattrBlock  uint32 // the external xattr block, at Close
	// run0 is the file's data when it is one run from logical block 0,
	// as most files are: block numbers fit 32 bits (at most 2^32 blocks),
	// so it costs 8 bytes and no allocation. Other layouts live in ext.
	run0Start uint32
	run0Len   uint32
	// layer is the layer that made this inode or, for a directory, last
	// named it (NewLayer); it fills what would be padding.
	layer uint32
	size  uint64
	times [4][2]uint32 // atime, ctime, mtime, crtime as encodeTime gives them
	ext   *inodeExt    // the rare parts, nil for most inodes
	dir   *dir
}

// inodeExt holds what few inodes have, out of line.
type inodeExt struct {
	link     string    // a fast symlink's target
	slowLink string    // a slow symlink's target, kept for Resolve
	xattrs   []xattr   // sorted as ext4 wants them in a block
	dev      [2]uint32 // encodeDev's words
	runs     []run     // data that run0 cannot hold
}

func (n *inode) extra() *inodeExt {
	if n.ext == nil {
		n.ext = &inodeExt{}
	}
	return n.ext
}

// runs lists the inode's data runs.
func (n *inode) runs() []run {
	if n.run0Len != 0 {
		return []run{{logical: 0, len: n.run0Len, start: uint64(n.run0Start)}}
	}
	if n.ext == nil {
		return nil
	}
	return n.ext.runs
}

// addRun appends count blocks at start for logical block logical.
func (n *inode) addRun(logical uint32, start, count uint64) {
	switch {
	case n.run0Len == 0 && (n.ext == nil || len(n.ext.runs) == 0) && logical == 0:
		n.run0Start, n.run0Len = uint32(start), uint32(count)
	case n.run0Len != 0 && logical == n.run0Len && start == uint64(n.run0Start)+uint64(n.run0Len):
		n.run0Len += uint32(count)
	default:
		e := n.extra()
		if n.run0Len != 0 {
			e.runs = append(e.runs, run{logical: 0, len: n.run0Len, start: uint64(n.run0Start)})
			n.run0Start, n.run0Len = 0, 0
		}
		e.runs = appendRun(e.runs, logical, start, count)
	}
}

// setRuns replaces the inode's data runs.
func (n *inode) setRuns(rs []run) {
	n.run0Start, n.run0Len = 0, 0
	if n.ext != nil {
		n.ext.runs = nil
	}
	for _, r := range rs {
		n.addRun(r.logical, r.start, uint64(r.len))
	}
}

func (n *inode) link() string {
	if n.ext == nil {
		return ""
	}
	return n.ext.link
}

func (n *inode) xattrs() []xattr {
	if n.ext == nil {
		return nil
	}
	return n.ext.xattrs
}

const (
	tAtime = iota
	tCtime
	tMtime
	tCrtime
)

func (n *inode) isDir() bool { return n.mode&0xF000 == sIFDIR }
func (n *inode) isReg() bool { return n.mode&0xF000 == sIFREG }
func (n *inode) isLnk() bool { return n.mode&0xF000 == sIFLNK }

// dataBlocks counts the blocks that hold the inode's data.
func (n *inode) dataBlocks() uint64 {
	var c uint64
	for _, r := range n.runs() {
		c += uint64(r.len)
	}
	return c
}

// marshal writes the inode into b (inodeSize bytes, zeroed by the caller)
// and sets its checksum. iblock is the 60-byte i_block content, flags
// i_flags and blocks i_blocks in 512-byte units.
func (n *inode) marshal(b []byte, iblock *[60]byte, fsSeed, flags uint32, blocks uint64) {
	le := binary.LittleEndian
	le.PutUint16(b[0x00:], n.mode)
	le.PutUint16(b[0x02:], uint16(n.uid))
	le.PutUint32(b[0x04:], uint32(n.size))
	le.PutUint32(b[0x08:], n.times[tAtime][0])
	le.PutUint32(b[0x0C:], n.times[tCtime][0])
	le.PutUint32(b[0x10:], n.times[tMtime][0])
	le.PutUint16(b[0x18:], uint16(n.gid))
	links := n.links
	if n.isDir() && links > maxLinks {
		links = 1 // dir_nlink: the count no longer fits, 1 means "many"
	}
	le.PutUint16(b[0x1A:], uint16(links))
	le.PutUint32(b[0x1C:], uint32(blocks))
	le.PutUint32(b[0x20:], flags)
	copy(b[0x28:0x64], iblock[:])
	le.PutUint32(b[0x68:], n.xattrBlock)
	le.PutUint32(b[0x6C:], uint32(n.size>>32))
	le.PutUint16(b[0x74:], uint16(blocks>>32))
	le.PutUint16(b[0x78:], uint16(n.uid>>16))
	le.PutUint16(b[0x7A:], uint16(n.gid>>16))
	le.PutUint16(b[0x80:], extraIsize)
	le.PutUint32(b[0x84:], n.times[tCtime][1])
	le.PutUint32(b[0x88:], n.times[tMtime][1])
	le.PutUint32(b[0x8C:], n.times[tAtime][1])
	le.PutUint32(b[0x90:], n.times[tCrtime][0])
	le.PutUint32(b[0x94:], n.times[tCrtime][1])
	inline, _ := splitInline(n.xattrs())
	putInlineXattrs(b[0x80+extraIsize:], inline)
	setInodeChecksum(b, n.ino, fsSeed, true)
}

// encodeTimes encodes one timestamp into all four time fields.
func encodeTimes(ts timestamp) [4][2]uint32 {
	lo, extra := encodeTime(ts)
	return [4][2]uint32{{lo, extra}, {lo, extra}, {lo, extra}, {lo, extra}}
}

// setInodeChecksum computes ext4_inode_csum: crc32c of the whole inode
// slot with both checksum fields read as zero, seeded per inode.
func setInodeChecksum(b []byte, ino, fsSeed uint32, hasHi bool) {
	le := binary.LittleEndian
	le.PutUint16(b[0x7C:], 0)
	if hasHi {
		le.PutUint16(b[0x82:], 0)
	}
	sum := crc32c(inodeSeed(fsSeed, ino, 0), b[:inodeSize])
	le.PutUint16(b[0x7C:], uint16(sum))
	if hasHi {
		le.PutUint16(b[0x82:], uint16(sum>>16))
	}
}
