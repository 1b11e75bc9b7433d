package ext4w

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"
)

// htree.go builds hashed directories (directory.rst "Hash Tree
// Directories"): a dx_root block, at most one level of dx_node blocks
// (there is no large_dir), and leaf blocks holding the entries sorted by
// the half-MD4 hash of their names.

// halfMD4 is the cut-down MD4 transform of the kernel's fs/ext4/hash.c
// and e2fsprogs' dirhash.c. It mixes 8 words of input into buf.
func halfMD4(buf *[4]uint32, in *[8]uint32) {
	const k2, k3 = 0o13240474631, 0o15666365641
	f := func(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }
	g := func(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }
	h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	a, b, c, d := buf[0], buf[1], buf[2], buf[3]
	type step struct {
		fn    func(x, y, z uint32) uint32
		word  int
		k     uint32
		shift int
	}
	rounds := [24]step{
		{f, 0, 0, 3}, {f, 1, 0, 7}, {f, 2, 0, 11}, {f, 3, 0, 19},
		{f, 4, 0, 3}, {f, 5, 0, 7}, {f, 6, 0, 11}, {f, 7, 0, 19},
		{g, 1, k2, 3}, {g, 3, k2, 5}, {g, 5, k2, 9}, {g, 7, k2, 13},
		{g, 0, k2, 3}, {g, 2, k2, 5}, {g, 4, k2, 9}, {g, 6, k2, 13},
		{h, 3, k3, 3}, {h, 7, k3, 9}, {h, 2, k3, 11}, {h, 6, k3, 15},
		{h, 1, k3, 3}, {h, 5, k3, 9}, {h, 0, k3, 11}, {h, 4, k3, 15},
	}
	// The four registers rotate roles each step: a, d, c, b, a, ...
	for i, s := range rounds {
		switch i % 4 {
		case 0:
			a = bits.RotateLeft32(a+s.fn(b, c, d)+in[s.word]+s.k, s.shift)
		case 1:
			d = bits.RotateLeft32(d+s.fn(a, b, c)+in[s.word]+s.k, s.shift)
		case 2:
			c = bits.RotateLeft32(c+s.fn(d, a, b)+in[s.word]+s.k, s.shift)
		case 3:
			b = bits.RotateLeft32(b+s.fn(c, d, a)+in[s.word]+s.k, s.shift)
		}
	}
	buf[0] += a
	buf[1] += b
	buf[2] += c
	buf[3] += d
}

// str2hashbuf packs up to 32 bytes of name into 8 words, padding with the
// length as the kernel does. Bytes are sign-extended: the superblock pins
// the signed hash flag, whatever the host's char.
func str2hashbuf(msg string, in *[8]uint32) {
	n := len(msg)
	pad := uint32(n) | uint32(n)<<8
	pad |= pad << 16
	val := pad
	if n > 32 {
		n = 32
	}
	w := 0
	for i := 0; i < n; i++ {
		val = uint32(int32(int8(msg[i]))) + val<<8
		if i%4 == 3 {
			in[w] = val
			w++
			val = pad
		}
	}
	if w < 8 {
		in[w] = val
		w++
	}
	for ; w < 8; w++ {
		in[w] = pad
	}
}

// dirHash is the major half-MD4 hash of a name with the superblock's seed.
func dirHash(name string, seed *[4]uint32) uint32 {
	buf := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	if seed[0]|seed[1]|seed[2]|seed[3] != 0 {
		buf = *seed
	}
	var in [8]uint32
	for p := name; ; p = p[32:] {
		str2hashbuf(p, &in)
		halfMD4(&buf, &in)
		if len(p) <= 32 {
			break
		}
	}
	h := buf[1] &^ 1
	if h == 0x7fffffff<<1 { // EXT2_HTREE_EOF_32BIT is reserved
		h = (0x7fffffff - 1) << 1
	}
	return h
}

// dx block geometry with metadata_csum: the limit leaves room for dx_tail.
const (
	dxRootCountOff = 0x20
	dxNodeCountOff = 0x08
	dxRootLimit    = (blockSize-dxRootCountOff)/8 - 1 // 507
	dxNodeLimit    = (blockSize-dxNodeCountOff)/8 - 1 // 510
)

// htreeMaxLeaves is the most leaf blocks a hashed directory holds:
// without large_dir an htree has two levels, a dx_root of dxRootLimit
// dx_nodes of dxNodeLimit leaves each (258,570). A variable only so that a
// test can lower it: reaching the real one takes 3.9 million names of 255
// bytes.
var htreeMaxLeaves = dxRootLimit * dxNodeLimit

// dxNodes is how many dx_node blocks an htree of leaves leaf blocks
// needs: none while the dx_root holds them all, else one per dxNodeLimit
// leaves. Past htreeMaxLeaves it is an error, as the kernel's "Directory
// index full" is: a dx_root of more than dxRootLimit entries would run
// over its dx_tail and then off its block.
func dxNodes(leaves int) (int, error) {
	switch {
	case leaves > htreeMaxLeaves:
		return 0, fmt.Errorf("more than the %d a hashed directory holds without large_dir", htreeMaxLeaves)
	case leaves <= dxRootLimit:
		return 0, nil
	}
	return int(ceilDiv(uint64(leaves), dxNodeLimit)), nil
}

type dxEntry struct {
	hash  uint32
	block uint32
}

// buildHtree lays out a hashed directory: block 0 is the dx_root, then
// the dx_node blocks if there are any, then the leaves. Entries must
// already carry their hashes. It returns the blocks with checksums.
func buildHtree(self, parent uint32, ents []diskEnt, seed uint32) ([][]byte, error) {
	// Hashes are stored plus one (0 means "not yet computed"); the plus
	// one changes neither the order nor the collision test below.
	sort.Slice(ents, func(i, j int) bool {
		if ents[i].hash != ents[j].hash {
			return ents[i].hash < ents[j].hash
		}
		return ents[i].name < ents[j].name
	})
	// Leaves: pack in hash order; remember each leaf's first hash, marked
	// with the collision bit when it continues the previous leaf's hash.
	var lb dirBuilder
	var leafHash []uint32
	prev := uint32(0)
	for i := range ents {
		e := &ents[i]
		if !lb.fits(len(e.name)) {
			lb.finishBlock()
			lb.startBlock()
			h := e.hash - 1
			if i > 0 && e.hash == prev {
				h |= 1
			}
			leafHash = append(leafHash, h)
		}
		lb.put(e.name, e.ino, e.ft)
		prev = e.hash
	}
	lb.finishBlock()
	leaves := lb.blocks

	nodes, err := dxNodes(len(leaves))
	if err != nil {
		return nil, fmt.Errorf("%w: %d names need %d leaf blocks, %w", ErrInvalid, len(ents), len(leaves), err)
	}
	firstLeaf := uint32(1 + nodes)
	blocks := make([][]byte, 0, 1+nodes+len(leaves))

	root := newBlock()
	le := binary.LittleEndian
	le.PutUint32(root[0x00:], self)
	le.PutUint16(root[0x04:], 12)
	root[0x06] = 1
	root[0x07] = ftDir
	root[0x08] = '.'
	le.PutUint32(root[0x0C:], parent)
	le.PutUint16(root[0x10:], blockSize-12)
	root[0x12] = 2
	root[0x13] = ftDir
	root[0x14], root[0x15] = '.', '.'
	root[0x1C] = hashHalfMD4
	root[0x1D] = 8 // info_length
	blocks = append(blocks, root)

	leafEntries := make([]dxEntry, len(leaves))
	for i := range leaves {
		leafEntries[i] = dxEntry{hash: leafHash[i], block: firstLeaf + uint32(i)}
	}
	if nodes == 0 {
		putDxEntries(root, dxRootCountOff, dxRootLimit, leafEntries, seed)
	} else {
		root[0x1E] = 1 // indirect_levels
		var top []dxEntry
		for n := 0; n < nodes; n++ {
			part := leafEntries[n*dxNodeLimit : min((n+1)*dxNodeLimit, len(leafEntries))]
			node := newBlock()
			le.PutUint16(node[4:], blockSize) // an empty entry spanning the block
			putDxEntries(node, dxNodeCountOff, dxNodeLimit, part, seed)
			blocks = append(blocks, node)
			top = append(top, dxEntry{hash: part[0].hash, block: uint32(1 + n)})
		}
		putDxEntries(root, dxRootCountOff, dxRootLimit, top, seed)
	}
	for _, l := range leaves {
		setDirTail(l, seed)
	}
	return append(blocks, leaves...), nil
}

// putDxEntries writes count/limit, the entries (the first one's hash is
// implied zero and its slot holds count and limit), and the dx_tail with
// ext4_dx_csum's checksum.
func putDxEntries(b []byte, countOff, limit int, es []dxEntry, seed uint32) {
	le := binary.LittleEndian
	le.PutUint16(b[countOff:], uint16(limit))
	le.PutUint16(b[countOff+2:], uint16(len(es)))
	le.PutUint32(b[countOff+4:], es[0].block)
	for i := 1; i < len(es); i++ {
		o := countOff + i*8
		le.PutUint32(b[o:], es[i].hash)
		le.PutUint32(b[o+4:], es[i].block)
	}
	tail := countOff + limit*8
	size := countOff + len(es)*8
	sum := crc32c(seed, b[:size])
	sum = crc32c(sum, b[tail:tail+4]) // dt_reserved
	sum = crc32c(sum, []byte{0, 0, 0, 0})
	le.PutUint32(b[tail+4:], sum)
}

// dirBlocks lays out a directory: one linear block when everything fits,
// else an htree. seed is the directory inode's checksum seed; leaf
// checksums are set here too.
func dirBlocks(self, parent uint32, ents []diskEnt, hashSeed *[4]uint32, csumSeed uint32) (blocks [][]byte, indexed bool, err error) {
	if linearFits(ents) {
		bs := buildLinear(self, parent, ents, 1)
		setDirTail(bs[0], csumSeed)
		return bs, false, nil
	}
	for i := range ents {
		e := &ents[i]
		if e.hash == 0 {
			e.hash = dirHash(e.name, hashSeed) + 1
			if e.ent != nil {
				e.ent.hash = e.hash
			}
		}
	}
	blocks, err = buildHtree(self, parent, ents, csumSeed)
	return blocks, true, err
}
