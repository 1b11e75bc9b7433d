package ext4w

// check_dir_test.go: the self-check's directory passes, like e2fsck's
// passes 2 to 4: every directory block's entries and checksum tail,
// htree index blocks and the hash ranges of their leaves, then names
// against inodes: file types, "." and "..", link counts, xattr block
// refcounts, and that every inode is reachable from the root.

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// sortedInodes lists the used inodes the check recorded, in order, so
// that reports come out the same on every run.
func (c *checker) sortedInodes() []uint32 {
	out := make([]uint32, 0, len(c.inodes))
	for ino := range c.inodes {
		out = append(out, ino)
	}
	slices.Sort(out)
	return out
}

func (c *checker) checkDirs() error {
	for _, ino := range c.sortedInodes() {
		if n := c.inodes[ino]; n.mode&0xF000 == sIFDIR {
			c.checkDir(n)
		}
	}
	return nil
}

// dirBlocks reads a directory's blocks in logical order.
func (c *checker) dirData(n *ckInode) ([]byte, bool) {
	var out []byte
	for _, e := range n.exts {
		b, err := c.read(e.start, uint64(e.len))
		if err != nil {
			c.problem("directory %d: %v", n.ino, err)
			return nil, false
		}
		out = append(out, b...)
	}
	return out, len(out) > 0
}

func (c *checker) checkDir(n *ckInode) {
	data, ok := c.dirData(n)
	if !ok {
		return
	}
	seed := c.ckInodeSeed(n.ino, binary.LittleEndian.Uint32(n.raw[0x64:]))
	nb := len(data) / blockSize
	block := func(i int) []byte { return data[i*blockSize : (i+1)*blockSize] }
	if n.flags&inodeFlagIndex == 0 {
		for i := 0; i < nb; i++ {
			c.dirLeaf(n, block(i), i == 0, seed, fmt.Sprintf("directory %d block %d", n.ino, i), nil)
		}
		return
	}
	if nb < 2 {
		c.problem("directory %d: hashed with %d block", n.ino, nb)
		return
	}
	c.checkHtree(n, nb, block, seed)
}

// dirLeaf checks one leaf block: the rec_len chain covers the block up to
// the checksum tail exactly, names are valid, and the tail's checksum is
// right. In a linear directory's first block the first two entries are
// "." and "..". inRange, when set, checks each name's hash.
func (c *checker) dirLeaf(n *ckInode, b []byte, first bool, seed uint32, what string, inRange func(name string) bool) {
	le := binary.LittleEndian
	t := b[dirLeafSpace:]
	if le.Uint32(t[0:]) != 0 || le.Uint16(t[4:]) != dirTailSize || t[6] != 0 || t[7] != dirTailFileType {
		c.problem("%s: no checksum tail", what)
		return
	}
	if sum := ckCRC(seed, b[:dirLeafSpace]); sum != le.Uint32(t[8:]) {
		c.problem("%s: checksum %#x, computed %#x", what, le.Uint32(t[8:]), sum)
		return
	}
	k := 0
	for off := 0; off < dirLeafSpace; k++ {
		if off+direntHdrSize > dirLeafSpace {
			c.problem("%s: an entry header at %d crosses the tail", what, off)
			return
		}
		ino, recLen, nameLen, ft := le.Uint32(b[off:]), int(le.Uint16(b[off+4:])), int(b[off+6]), b[off+7]
		if recLen < direntHdrSize+4 || recLen%4 != 0 || off+recLen > dirLeafSpace {
			c.problem("%s: entry at %d has rec_len %d", what, off, recLen)
			return
		}
		if ino == 0 {
			off += recLen
			continue
		}
		if nameLen == 0 || direntHdrSize+nameLen > recLen {
			c.problem("%s: entry at %d: name of %d bytes in rec_len %d", what, off, nameLen, recLen)
			return
		}
		name := string(b[off+direntHdrSize : off+direntHdrSize+nameLen])
		switch {
		case first && k == 0:
			if name != "." || ino != n.ino || recLen != 12 || ft != ftDir {
				c.problem("%s: first entry %q (inode %d, rec_len %d), want \".\" for %d", what, name, ino, recLen, n.ino)
			}
		case first && k == 1:
			if name != ".." || ft != ftDir {
				c.problem("%s: second entry %q, want \"..\"", what, name)
			}
			n.dotdot = ino
		case name == "." || name == "..":
			c.problem("%s: a %q entry at %d", what, name, off)
		case strings.ContainsAny(name, "/\x00"):
			c.problem("%s: name %q holds a / or NUL", what, name)
		default:
			if inRange != nil && !inRange(name) {
				c.problem("%s: %q hashes outside the leaf's range", what, name)
			}
			n.ents = append(n.ents, ckDirent{name: name, ino: ino, ft: ft})
		}
		off += recLen
	}
	if first && k < 2 {
		c.problem("%s: no \".\" and \"..\" entries", what)
	}
}

// dxTailOK checks a dx_root or dx_node's dx_tail (ext4_dx_csum: the
// block up to the last used dx_entry, then dt_reserved, then four zero
// bytes where the checksum goes).
func (c *checker) dxTailOK(b []byte, countOff, limit, count int, seed uint32) bool {
	tail := countOff + limit*8
	le := binary.LittleEndian
	sum := ckCRC(seed, b[:countOff+count*8], b[tail:tail+4], []byte{0, 0, 0, 0})
	return le.Uint32(b[tail:]) == 0 && le.Uint32(b[tail+4:]) == sum
}

// checkHtree checks a hashed directory: the dx_root, at most one level of
// dx_nodes (no large_dir), every other block referenced exactly once as
// a leaf, and each leaf's names hashing into the range its index entry
// gives it.
func (c *checker) checkHtree(n *ckInode, nb int, block func(int) []byte, seed uint32) {
	le := binary.LittleEndian
	what := fmt.Sprintf("directory %d (htree)", n.ino)
	r := block(0)
	if le.Uint32(r[0x00:]) != n.ino || le.Uint16(r[0x04:]) != 12 || r[0x06] != 1 || r[0x07] != ftDir || string(r[0x08:0x0C]) != ".\x00\x00\x00" ||
		le.Uint16(r[0x10:]) != blockSize-12 || r[0x12] != 2 || r[0x13] != ftDir || string(r[0x14:0x18]) != "..\x00\x00" {
		c.problem("%s: dx_root's \".\" and \"..\" entries are wrong", what)
		return
	}
	n.dotdot = le.Uint32(r[0x0C:])
	if le.Uint32(r[0x18:]) != 0 || r[0x1C] != hashHalfMD4 || r[0x1D] != 8 || r[0x1E] > 1 || r[0x1F] != 0 {
		c.problem("%s: dx_root_info: hash %d, info length %d, %d levels, flags %#x", what, r[0x1C], r[0x1D], r[0x1E], r[0x1F])
		return
	}
	levels := int(r[0x1E])
	refs := make([]int, nb)
	refs[0] = 1
	var walk func(b []byte, countOff, wantLimit, level int, lo, hi uint64, hiColl bool, where string)
	walk = func(b []byte, countOff, wantLimit, level int, lo, hi uint64, hiColl bool, where string) {
		limit, count := int(le.Uint16(b[countOff:])), int(le.Uint16(b[countOff+2:]))
		if limit != wantLimit || count == 0 || count > limit {
			c.problem("%s: %s has count %d, limit %d (want %d)", what, where, count, limit, wantLimit)
			return
		}
		if !c.dxTailOK(b, countOff, limit, count, seed) {
			c.problem("%s: %s has a bad dx_tail checksum", what, where)
			return
		}
		hash := func(i int) uint64 { return uint64(le.Uint32(b[countOff+8*i:])) }
		for i := 0; i < count; i++ {
			child := int(le.Uint32(b[countOff+8*i+4:]))
			elo, ehi, ecoll := lo, hi, hiColl
			if i > 0 {
				elo = hash(i) &^ 1
				if hash(i) < hash(i-1) && i > 1 || elo < lo || elo > hi {
					c.problem("%s: %s entry %d hash %#x out of order", what, where, i, hash(i))
					return
				}
			}
			if i+1 < count {
				ehi, ecoll = hash(i+1)&^1, hash(i+1)&1 != 0
			}
			if child <= 0 || child >= nb {
				c.problem("%s: %s entry %d points at block %d of %d", what, where, i, child, nb)
				return
			}
			refs[child]++
			if refs[child] > 1 {
				c.problem("%s: block %d is referenced twice", what, child)
				return
			}
			cb := block(child)
			cw := fmt.Sprintf("block %d", child)
			if level > 0 {
				if le.Uint32(cb[0:]) != 0 || le.Uint16(cb[4:]) != blockSize || cb[6] != 0 || cb[7] != 0 {
					c.problem("%s: dx_node %s's fake entry is wrong", what, cw)
					return
				}
				walk(cb, dxNodeCountOff, dxNodeLimit, level-1, elo, ehi, ecoll, "dx_node "+cw)
				continue
			}
			lo2, hi2, coll2 := elo, ehi, ecoll
			outside := 0
			c.dirLeaf(n, cb, false, seed, what+" leaf "+cw, func(name string) bool {
				h := uint64(dirHash(name, &c.hseed))
				if h >= lo2 && (h < hi2 || h == hi2 && coll2) {
					return true
				}
				outside++
				return outside > 1 // one report a leaf is enough
			})
		}
	}
	walk(r, dxRootCountOff, dxRootLimit, levels, 0, 1<<32, false, "dx_root")
	for i, k := range refs {
		if k == 0 {
			c.problem("%s: block %d is not referenced by the index", what, i)
			break
		}
	}
}

// checkLinks matches names with inodes: each name's inode is in use and
// of the entry's file type, directories have one name and a matching
// "..", link counts equal the names (directories: 2 + subdirectories,
// or 1 past 65,000 under dir_nlink), xattr block refcounts equal their
// users, and everything is reachable from the root.
func (c *checker) checkLinks() error {
	reached := map[uint32]bool{inoRoot: true}
	queue := []uint32{inoRoot}
	for len(queue) > 0 {
		d := c.inodes[queue[0]]
		queue = queue[1:]
		seen := map[string]bool{}
		for _, e := range d.ents {
			where := fmt.Sprintf("directory %d entry %q", d.ino, e.name)
			if seen[e.name] {
				c.problem("%s: the name is there twice", where)
			}
			seen[e.name] = true
			if e.ino == 0 || uint64(e.ino) > c.groups*c.ipg || !c.inodeUsed(e.ino) {
				c.problem("%s: inode %d is not in use", where, e.ino)
				continue
			}
			if e.ino < firstIno {
				c.problem("%s: names reserved inode %d", where, e.ino)
				continue
			}
			t := c.inodes[e.ino]
			if t == nil {
				continue // already reported: a bad checksum
			}
			if want := ftOf(t.mode); e.ft != want {
				c.problem("%s: file type %d, the inode is a %s", where, e.ft, typeName(t.mode))
			}
			t.names++
			if t.mode&0xF000 == sIFDIR {
				d.subdirs++
				if t.parentOf != 0 {
					c.problem("%s: directory %d has a second name", where, e.ino)
					continue
				}
				t.parentOf = d.ino
			}
			if !reached[e.ino] {
				reached[e.ino] = true
				if t.mode&0xF000 == sIFDIR {
					queue = append(queue, e.ino)
				}
			}
		}
	}
	root := c.inodes[inoRoot]
	var lpf uint32
	for _, e := range root.ents {
		if e.name == "lost+found" {
			lpf = e.ino
		}
	}
	unreached := 0
	for _, ino := range c.sortedInodes() {
		n := c.inodes[ino]
		what := fmt.Sprintf("inode %d (%s)", ino, typeName(n.mode))
		if !reached[ino] {
			// A broken directory strands everything under it: a few
			// reports say enough.
			if unreached++; unreached <= 3 {
				c.problem("%s is not reachable from the root", what)
			}
			continue
		}
		if n.mode&0xF000 == sIFDIR {
			parent := n.parentOf
			if ino == inoRoot {
				parent = inoRoot
			}
			if n.dotdot != parent {
				c.problem("%s: \"..\" is %d, but its name is in %d", what, n.dotdot, parent)
			}
			want := 2 + n.subdirs
			if want > maxLinks {
				want = 1
			}
			if int(n.links) != want {
				c.problem("%s: %d links, want %d (2 + %d subdirectories)", what, n.links, want, n.subdirs)
			}
			if n.flags&inodeFlagIndex == 0 && len(n.exts) > 0 && (n.exts[0].len > 1 || len(n.exts) > 1) && ino != lpf {
				c.problem("%s: more than one block but not hashed (SPEC: only lost+found may be)", what)
			}
			continue
		}
		if int(n.links) != n.names {
			c.problem("%s: %d links, but %d names", what, n.links, n.names)
		}
	}
	if unreached > 3 {
		c.problem("(%d more inodes are not reachable from the root)", unreached-3)
	}
	for _, blk := range slices.Sorted(maps.Keys(c.xblocks)) {
		if xb := c.xblocks[blk]; xb.refcount != xb.users {
			c.problem("xattr block %d: h_refcount %d, but %d inodes use it", blk, xb.refcount, xb.users)
		}
	}
	return nil
}
