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
// Without this the kernel cannot read the ACL back. Either form is
// checked as the kernel's posix_acl_valid checks it, since the kernel
// answers EINVAL for a file whose ACL is not valid.
func aclToDisk(v []byte) ([]byte, error) {
	es, err := parseACL(v)
	if err != nil {
		return nil, err
	}
	// posix_acl_valid wants entries by tag, then by id.
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Tag != es[j].Tag {
			return es[i].Tag < es[j].Tag
		}
		return es[i].ID < es[j].ID
	})
	if err := validACL(es); err != nil {
		return nil, err
	}
	out := binary.LittleEndian.AppendUint32(nil, aclDiskVersion)
	for _, e := range es {
		out = binary.LittleEndian.AppendUint16(out, e.Tag)
		out = binary.LittleEndian.AppendUint16(out, e.Perm)
		if e.Tag == aclUser || e.Tag == aclGroup {
			out = binary.LittleEndian.AppendUint32(out, e.ID)
		}
	}
	return out, nil
}

// parseACL reads an ACL in the xattr form (version 2, 8 bytes an entry)
// or ext4's disk form (version 1, short entries).
func parseACL(v []byte) ([]ACLEntry, error) {
	if len(v) < 4 {
		return nil, fmt.Errorf("%w: ACL of %d bytes", ErrInvalid, len(v))
	}
	le := binary.LittleEndian
	var es []ACLEntry
	switch ver := le.Uint32(v); ver {
	case aclXattrVersion:
		if (len(v)-4)%8 != 0 {
			return nil, fmt.Errorf("%w: ACL of %d bytes is not whole entries", ErrInvalid, len(v))
		}
		for o := 4; o < len(v); o += 8 {
			es = append(es, ACLEntry{Tag: le.Uint16(v[o:]), Perm: le.Uint16(v[o+2:]), ID: le.Uint32(v[o+4:])})
		}
	case aclDiskVersion:
		for o := 4; o < len(v); {
			if o+4 > len(v) {
				return nil, fmt.Errorf("%w: ACL ends inside an entry", ErrInvalid)
			}
			e := ACLEntry{Tag: le.Uint16(v[o:]), Perm: le.Uint16(v[o+2:])}
			o += 4
			if e.Tag == aclUser || e.Tag == aclGroup {
				if o+4 > len(v) {
					return nil, fmt.Errorf("%w: ACL ends inside an entry", ErrInvalid)
				}
				e.ID = le.Uint32(v[o:])
				o += 4
			}
			es = append(es, e)
		}
	default:
		return nil, fmt.Errorf("%w: ACL version %d", ErrInvalid, ver)
	}
	return es, nil
}

// validACL applies posix_acl_valid's rules to entries sorted by tag and
// id: one owner, group and other entry, a mask when there are named
// entries (at most one), no id named twice, permissions rwx at most.
func validACL(es []ACLEntry) error {
	var count [0x21]int
	named := 0
	for i, e := range es {
		if e.Perm&^7 != 0 {
			return fmt.Errorf("%w: ACL permission %#o", ErrInvalid, e.Perm)
		}
		switch e.Tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
		case aclUser, aclGroup:
			named++
			if i > 0 && es[i-1].Tag == e.Tag && es[i-1].ID == e.ID {
				return fmt.Errorf("%w: ACL names id %d twice", ErrInvalid, e.ID)
			}
		default:
			return fmt.Errorf("%w: ACL tag %#x", ErrInvalid, e.Tag)
		}
		count[e.Tag]++
	}
	switch {
	case count[aclUserObj] != 1 || count[aclGroupObj] != 1 || count[aclOther] != 1:
		return fmt.Errorf("%w: an ACL needs one owner, one group and one other entry", ErrInvalid)
	case count[aclMask] > 1:
		return fmt.Errorf("%w: an ACL has at most one mask", ErrInvalid)
	case named > 0 && count[aclMask] == 0:
		return fmt.Errorf("%w: an ACL with named users or groups needs a mask", ErrInvalid)
	}
	return nil
}
