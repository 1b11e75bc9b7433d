package ext4w

import "encoding/binary"

// run is a contiguous piece of a file: len blocks from logical block
// logical, stored at physical block start.
type run struct {
	logical uint32
	len     uint32
	start   uint64
}

// Extent tree geometry (ifork.rst): i_block holds a header and four
// entries; a tree block holds a header, (4096-12-4)/12 entries and a tail.
const (
	extentHdrSize       = 12
	extentEntrySize     = 12
	extentsInInode      = 4
	extentsPerBlock     = (blockSize - extentHdrSize - 4) / extentEntrySize // 340
	extentTailOffset    = extentHdrSize + extentsPerBlock*extentEntrySize
	maxRunLen           = maxExtentLen
	extentTreeMaxLevels = 5
)

// appendRun adds blocks to a file's run list, merging with the last run
// when they continue it both logically and physically.
func appendRun(rs []run, logical uint32, start, n uint64) []run {
	if k := len(rs); k > 0 {
		last := &rs[k-1]
		if uint64(last.logical)+uint64(last.len) == uint64(logical) && last.start+uint64(last.len) == start {
			last.len += uint32(n)
			return rs
		}
	}
	return append(rs, run{logical: logical, len: uint32(n), start: start})
}

// extents cuts runs into extents of at most maxRunLen blocks.
func extents(rs []run) []run {
	n := 0
	for _, r := range rs {
		n += int(ceilDiv(uint64(r.len), maxRunLen))
	}
	if n == len(rs) {
		return rs
	}
	out := make([]run, 0, n)
	for _, r := range rs {
		for r.len > 0 {
			l := r.len
			if l > maxRunLen {
				l = maxRunLen
			}
			out = append(out, run{logical: r.logical, len: l, start: r.start})
			r.logical += l
			r.start += uint64(l)
			r.len -= l
		}
	}
	return out
}

// extentTreeBlocks is how many tree blocks n extents need beyond i_block.
func extentTreeBlocks(n int) uint64 {
	var total uint64
	for n > extentsInInode {
		n = int(ceilDiv(uint64(n), extentsPerBlock))
		total += uint64(n)
	}
	return total
}

// extentNode is one entry of a level being built: the first logical block
// it covers and where it points (data, or a tree block).
type extentNode struct {
	logical uint32
	len     uint32 // leaves only
	start   uint64
}

// buildExtentTree writes the extent tree of a file whose extents are exts
// (already cut to maxRunLen). blocks are the tree blocks allocated for it,
// extentTreeBlocks(len(exts)) of them, used bottom level first. It returns
// i_block and the tree blocks' contents with checksums.
func buildExtentTree(exts []run, blocks []uint64, seed uint32) (iblock [60]byte, tree [][]byte) {
	level := make([]extentNode, len(exts))
	for i, e := range exts {
		level[i] = extentNode{logical: e.logical, len: e.len, start: e.start}
	}
	depth := uint16(0)
	next := 0
	for len(level) > extentsInInode {
		var up []extentNode
		for i := 0; i < len(level); i += extentsPerBlock {
			j := min(i+extentsPerBlock, len(level))
			b := make([]byte, blockSize)
			putExtentNode(b, level[i:j], extentsPerBlock, depth)
			binary.LittleEndian.PutUint32(b[extentTailOffset:], crc32c(seed, b[:extentTailOffset]))
			tree = append(tree, b)
			up = append(up, extentNode{logical: level[i].logical, start: blocks[next]})
			next++
		}
		level = up
		depth++
	}
	putExtentNode(iblock[:], level, extentsInInode, depth)
	return iblock, tree
}

// putExtentNode writes a header and entries: leaves (depth 0) or indexes.
func putExtentNode(b []byte, es []extentNode, max int, depth uint16) {
	le := binary.LittleEndian
	le.PutUint16(b[0:], extentMagic)
	le.PutUint16(b[2:], uint16(len(es)))
	le.PutUint16(b[4:], uint16(max))
	le.PutUint16(b[6:], depth)
	le.PutUint32(b[8:], 0)
	for i, e := range es {
		o := extentHdrSize + i*extentEntrySize
		le.PutUint32(b[o:], e.logical)
		if depth == 0 {
			le.PutUint16(b[o+4:], uint16(e.len))
			le.PutUint16(b[o+6:], uint16(e.start>>32))
			le.PutUint32(b[o+8:], uint32(e.start))
		} else {
			le.PutUint32(b[o+4:], uint32(e.start))
			le.PutUint16(b[o+8:], uint16(e.start>>32))
			le.PutUint16(b[o+10:], 0)
		}
	}
}
