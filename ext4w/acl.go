package ext4w

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// POSIX ACL tags (linux/posix_acl.h).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20

	aclXattrVersion = 2 // the format getxattr returns and tars carry
	aclDiskVersion  = 1 // EXT4_ACL_VERSION: what ext4 stores
)

// ACLEntry is one entry of a POSIX ACL.
type ACLEntry struct {
	Tag  uint16
	Perm uint16 // rwx bits
	ID   uint32 // uid or gid for user and group entries
}

// EncodeACLXattr encodes entries in the xattr format the kernel's
// getxattr returns for system.posix_acl_* (version 2, 8 bytes an entry),
// the form tars carry in SCHILY.xattr records.
func EncodeACLXattr(es []ACLEntry) []byte {
	b := make([]byte, 4+8*len(es))
	binary.LittleEndian.PutUint32(b, aclXattrVersion)
	for i, e := range es {
		o := 4 + 8*i
		binary.LittleEndian.PutUint16(b[o:], e.Tag)
		binary.LittleEndian.PutUint16(b[o+2:], e.Perm)
		id := e.ID
		if e.Tag != aclUser && e.Tag != aclGroup {
			id = 0xFFFFFFFF // ACL_UNDEFINED_ID
		}
		binary.LittleEndian.PutUint32(b[o+4:], id)
	}
	return b
}

// aclToDisk converts an ACL xattr value to ext4's on-disk form
// (fs/ext4/acl.h: a version-1 header, short 4-byte entries for the
// owner, group, mask and other, 8-byte ones for named users and groups).
// Without this the kernel cannot read the ACL back. A value already in
// the disk form is checked and kept.
func aclToDisk(v []byte) ([]byte, error) {
	if len(v) < 4 {
		return nil, fmt.Errorf("%w: ACL of %d bytes", ErrInvalid, len(v))
	}
	switch binary.LittleEndian.Uint32(v) {
	case aclDiskVersion:
		return v, nil
	case aclXattrVersion:
	default:
		return nil, fmt.Errorf("%w: ACL version %d", ErrInvalid, binary.LittleEndian.Uint32(v))
	}
	if (len(v)-4)%8 != 0 {
		return nil, fmt.Errorf("%w: ACL of %d bytes is not whole entries", ErrInvalid, len(v))
	}
	var es []ACLEntry
	for o := 4; o < len(v); o += 8 {
		es = append(es, ACLEntry{
			Tag:  binary.LittleEndian.Uint16(v[o:]),
			Perm: binary.LittleEndian.Uint16(v[o+2:]),
			ID:   binary.LittleEndian.Uint32(v[o+4:]),
		})
	}
	// The kernel's posix_acl_valid wants entries by tag, then by id.
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Tag != es[j].Tag {
			return es[i].Tag < es[j].Tag
		}
		return es[i].ID < es[j].ID
	})
	out := binary.LittleEndian.AppendUint32(nil, aclDiskVersion)
	for _, e := range es {
		if e.Perm&^7 != 0 {
			return nil, fmt.Errorf("%w: ACL permission %#o", ErrInvalid, e.Perm)
		}
		switch e.Tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			out = binary.LittleEndian.AppendUint16(out, e.Tag)
			out = binary.LittleEndian.AppendUint16(out, e.Perm)
		case aclUser, aclGroup:
			out = binary.LittleEndian.AppendUint16(out, e.Tag)
			out = binary.LittleEndian.AppendUint16(out, e.Perm)
			out = binary.LittleEndian.AppendUint32(out, e.ID)
		default:
			return nil, fmt.Errorf("%w: ACL tag %#x", ErrInvalid, e.Tag)
		}
	}
	return out, nil
}
