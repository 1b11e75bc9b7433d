package ext4w

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// xattr is one extended attribute with its name split into the name index
// and the stored suffix (attributes.rst "Attribute Name Indices").
type xattr struct {
	index uint8
	name  string
	value []byte
}

// xattrPrefixes maps name prefixes to indexes. The ACL names are whole
// names with an empty suffix.
var xattrPrefixes = []struct {
	prefix string
	index  uint8
}{
	{"user.", xattrIndexUser},
	{"trusted.", xattrIndexTrusted},
	{"security.", xattrIndexSecurity},
	{"system.posix_acl_access", xattrIndexACLAccess},
	{"system.posix_acl_default", xattrIndexACLDefault},
	{"system.", xattrIndexSystem},
}

const (
	xattrEntrySize     = 16 // XattrEntry without the name
	xattrBlockHdrSize  = 32
	inlineXattrStart   = 0x80 + extraIsize // i_extra_isize bytes past the old inode
	inlineXattrSpace   = inodeSize - inlineXattrStart
	maxXattrNameSuffix = 255
)

func pad4(n int) int { return (n + 3) &^ 3 }

func (x *xattr) entrySize() int { return xattrEntrySize + pad4(len(x.name)) }
func (x *xattr) valueSize() int { return pad4(len(x.value)) }

// parseXattrs splits, validates and sorts the attributes of one entry in
// the order the kernel expects in a block: by index, name length, name.
func parseXattrs(m map[string][]byte) ([]xattr, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]xattr, 0, len(m))
	for full, v := range m {
		x, err := splitXattrName(full)
		if err != nil {
			return nil, err
		}
		x.value = append([]byte(nil), v...)
		if x.index == xattrIndexACLAccess || x.index == xattrIndexACLDefault {
			if x.value, err = aclToDisk(v); err != nil {
				return nil, fmt.Errorf("xattr %q: %w", full, err)
			}
		}
		if xattrBlockHdrSize+x.entrySize()+4+x.valueSize() > blockSize {
			return nil, fmt.Errorf("%w: xattr %q is %d bytes, more than one block holds", ErrInvalid, full, len(v))
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return xattrLess(&out[i], &out[j]) })
	if _, blk := splitInline(out); xattrBlockUse(blk) > blockSize {
		return nil, fmt.Errorf("%w: the xattrs take %d bytes, more than the inode and one block hold", ErrInvalid, xattrBlockUse(out))
	}
	return out, nil
}

// xattrBlockUse is the bytes xs take in an external block: the header,
// the entries, the end marker and the padded values.
func xattrBlockUse(xs []xattr) int {
	if len(xs) == 0 {
		return 0
	}
	n := xattrBlockHdrSize + 4
	for i := range xs {
		n += xs[i].entrySize() + xs[i].valueSize()
	}
	return n
}

func xattrLess(a, b *xattr) bool {
	if a.index != b.index {
		return a.index < b.index
	}
	if len(a.name) != len(b.name) {
		return len(a.name) < len(b.name)
	}
	return a.name < b.name
}

func splitXattrName(full string) (xattr, error) {
	for _, p := range xattrPrefixes {
		if !strings.HasPrefix(full, p.prefix) {
			continue
		}
		suffix := full[len(p.prefix):]
		acl := p.index == xattrIndexACLAccess || p.index == xattrIndexACLDefault
		switch {
		case acl && suffix != "":
			continue // "system.posix_acl_accessX" is just a system. name
		case !acl && suffix == "":
			return xattr{}, fmt.Errorf("%w: xattr name %q has nothing after its prefix", ErrInvalid, full)
		case len(suffix) > maxXattrNameSuffix:
			return xattr{}, fmt.Errorf("%w: xattr name %q is too long", ErrInvalid, full)
		}
		return xattr{index: p.index, name: suffix}, nil
	}
	return xattr{}, fmt.Errorf("%w: xattr %q is not in the user, trusted, security or system namespace", ErrInvalid, full)
}

// splitInline decides which attributes live in the inode and which in an
// external block: in sorted order, each goes in the inode while it fits.
func splitInline(all []xattr) (inline, block []xattr) {
	used := 4 + 4 // magic and the end-of-entries marker
	for i := range all {
		need := all[i].entrySize() + all[i].valueSize()
		if len(block) == 0 && used+need <= inlineXattrSpace {
			inline = append(inline, all[i])
			used += need
			continue
		}
		block = append(block, all[i])
	}
	return inline, block
}

// xattrHash is ext4_xattr_hash_entry: the name bytes, then the value's
// little-endian words.
func xattrHash(x *xattr) uint32 {
	var h uint32
	for i := 0; i < len(x.name); i++ {
		h = h<<5 ^ h>>27 ^ uint32(x.name[i])
	}
	v := x.value
	for len(v) > 0 {
		var w [4]byte
		n := copy(w[:], v)
		v = v[n:]
		h = h<<16 ^ h>>16 ^ binary.LittleEndian.Uint32(w[:])
	}
	return h
}

// putXattrEntries lays out entries from the start of entries and values
// from the end of region; value offsets count from base. It returns the
// entry hashes' combination as ext4_xattr_rehash computes it.
func putXattrEntries(region []byte, entriesAt, base int, xs []xattr) uint32 {
	le := binary.LittleEndian
	off := entriesAt
	end := len(region)
	var blockHash uint32
	for i := range xs {
		x := &xs[i]
		valOff := 0
		if len(x.value) > 0 {
			end -= x.valueSize()
			copy(region[end:], x.value)
			valOff = end - base
		}
		h := xattrHash(x)
		region[off] = uint8(len(x.name))
		region[off+1] = x.index
		le.PutUint16(region[off+2:], uint16(valOff))
		le.PutUint32(region[off+4:], 0)
		le.PutUint32(region[off+8:], uint32(len(x.value)))
		le.PutUint32(region[off+12:], h)
		copy(region[off+16:], x.name)
		off += x.entrySize()
		blockHash = blockHash<<16 ^ blockHash>>16 ^ h
	}
	// The four zero bytes after the last entry end the list; the caller's
	// buffer is zeroed.
	return blockHash
}

// putInlineXattrs writes the in-inode attribute area (b starts at
// i_extra_isize's end). Value offsets count from the first entry.
func putInlineXattrs(b []byte, xs []xattr) {
	if len(xs) == 0 {
		return
	}
	binary.LittleEndian.PutUint32(b, xattrMagic)
	putXattrEntries(b[:inlineXattrSpace], 4, 4, xs)
}

// xattrBlockContent builds an external attribute block without its
// checksum, which depends on where the block lands.
func xattrBlockContent(xs []xattr) []byte {
	b := make([]byte, blockSize)
	le := binary.LittleEndian
	le.PutUint32(b[0x00:], xattrMagic)
	le.PutUint32(b[0x04:], 1) // refcount, raised for shared blocks
	le.PutUint32(b[0x08:], 1)
	h := putXattrEntries(b, xattrBlockHdrSize, 0, xs)
	le.PutUint32(b[0x0C:], h)
	return b
}

// finishXattrBlock sets the refcount and the checksum
// (ext4_xattr_block_csum: crc32c of the block number, then the block with
// h_checksum read as zero).
func finishXattrBlock(b []byte, refcount uint32, blk uint64, fsSeed uint32) {
	le := binary.LittleEndian
	le.PutUint32(b[0x04:], refcount)
	le.PutUint32(b[0x10:], 0)
	sum := crc32c(crc32cU64(fsSeed, blk), b)
	le.PutUint32(b[0x10:], sum)
}

// sameXattrs reports whether two sorted attribute lists are equal, for
// sharing one block between inodes.
func sameXattrs(a, b []xattr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].index != b[i].index || a[i].name != b[i].name || !bytes.Equal(a[i].value, b[i].value) {
			return false
		}
	}
	return true
}
