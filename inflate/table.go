package inflate

import "math/bits"

// A decode table maps the next bits of the input (least significant bit
// first, as DEFLATE packs its codes) straight to what they decode to.
// Each entry is a uint32:
//
//	bits  0-5   how many bits the entry consumes: the code, plus the extra
//	            bits of a length or distance
//	bit   6     a literal
//	bits  8-11  the code's own length, where extra bits follow it; for a
//	            subtable pointer, the subtable's index bits
//	bit  12     a subtable pointer: the code is longer than the main table
//	bit  13     end of block
//	bit  14     invalid: no code of the block's Huffman code starts so
//	bits 16-31  the value: the literal byte; a length's or distance's
//	            base; a subtable's offset
//
// So one lookup gives a length's base and extra bits as well as its
// code's length, and one shift consumes the code and its extra bits
// (libdeflate's layout, in spirit). Entries holding two literals (ISA-L
// packs several symbols per entry) were tried: on the Debian rootfs tar
// and on Go's source tree, gzip -6, filling them for each block cost more
// than they saved (1.57-1.69x klauspost/compress's throughput with them,
// 1.75-1.86x without); the fast loop decodes up to three literals per
// refill instead, as libdeflate does.
const (
	entryBits    = 0x3f
	entryLiteral = 1 << 6
	entrySub     = 1 << 12
	entryEOB     = 1 << 13
	entryInvalid = 1 << 14
	entrySpecial = entrySub | entryEOB | entryInvalid
)

// Index widths of the main tables. 11 bits of literal/length codes take
// most codes in one lookup; the tables are rebuilt for every block, and
// 2048 entries cost little to fill (10 bits measured the same, 12 bits
// slower).
const (
	litTableBits  = 11
	distTableBits = 8
	clenTableBits = 7 // code length codes are at most 7 bits: no subtable
	maxCodeLen    = 15
)

// Alphabet sizes (RFC 1951 3.2.5 and 3.2.7).
const (
	numLitLen    = 288 // the fixed code defines 286 and 287, which never occur
	maxLitLen    = 286 // HLIT + 257 above this is corrupt, as zlib and compress/flate say
	numDist      = 32  // the fixed code defines 30 and 31, which never occur
	maxDist      = 30
	numCodeLen   = 19
	endOfBlock   = 256
	windowSize   = 1 << 15
	maxMatchLen  = 258
	lenBaseShift = 16
)

// table is one Huffman code's decode table: main, indexed by the next
// bits, and the subtables of codes longer than main's index.
type table struct {
	main []uint32 // 1<<tableBits entries
	sub  []uint32
}

// symInfo gives each symbol of an alphabet its entry without the code's
// length: the kind, the value, and how many extra bits follow the code.
type symInfo struct {
	entry uint32 // value and kind bits
	extra uint32 // extra bits after the code
}

// litLenInfo and distInfo are the two alphabets, from RFC 1951 3.2.5.
// They are variables' initial values, not init's work, so that they are
// ready for every init function, the fixed tables' included.
var litLenInfo, distInfo = alphabets()

func alphabets() (litLenInfo, distInfo [numLitLen]symInfo) {
	for s := 0; s < 256; s++ {
		litLenInfo[s] = symInfo{entry: uint32(s)<<16 | entryLiteral}
	}
	litLenInfo[endOfBlock] = symInfo{entry: entryEOB}
	// Lengths 257..284: base and extra bits as in the RFC's table,
	// computed: four codes per extra bit count after the first eight.
	base, extra := uint32(3), uint32(0)
	for s := 257; s < 285; s++ {
		if s >= 265 && (s-265)%4 == 0 {
			extra++
		}
		litLenInfo[s] = symInfo{entry: base << 16, extra: extra}
		base += 1 << extra
	}
	litLenInfo[285] = symInfo{entry: 258 << 16}
	litLenInfo[286] = symInfo{entry: entryInvalid}
	litLenInfo[287] = symInfo{entry: entryInvalid}

	base, extra = 1, 0
	for s := 0; s < maxDist; s++ {
		if s >= 4 && s%2 == 0 {
			extra++
		}
		distInfo[s] = symInfo{entry: base << 16, extra: extra}
		base += 1 << extra
	}
	distInfo[30] = symInfo{entry: entryInvalid}
	distInfo[31] = symInfo{entry: entryInvalid}
	return litLenInfo, distInfo
}

// build makes t the decode table of the canonical Huffman code whose code
// lengths are lens (RFC 1951 3.2.2), the symbols described by info, with
// a main table of 1<<tb entries. It reports false for a code that
// compress/flate (and zlib) refuse: over-subscribed, or incomplete other
// than one code of one bit. An empty code builds a table of invalid
// entries: using it is the error, as in compress/flate.
func (t *table) build(lens []uint8, info []symInfo, tb uint) bool {
	var count [maxCodeLen + 1]int
	maxLen := 0
	for _, l := range lens {
		count[l]++
		if int(l) > maxLen {
			maxLen = int(l)
		}
	}
	count[0] = 0
	size := 1 << tb
	if cap(t.main) < size {
		t.main = make([]uint32, size)
	}
	t.main = t.main[:size]
	t.sub = t.sub[:0]
	// The Kraft sum, in units of 2^-maxLen, as compress/flate checks it.
	var next [maxCodeLen + 1]int
	code := 0
	for l := 1; l <= maxLen; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	sum := 0
	for l := 1; l <= maxLen; l++ {
		sum += count[l] << (maxLen - l)
	}
	switch {
	case maxLen == 0:
		fill(t.main, entryInvalid)
		return true
	case sum == 1<<maxLen:
	case maxLen == 1 && count[1] == 1:
		// zlib's exception: one code of one bit; its other bit pattern
		// is invalid.
		fill(t.main, entryInvalid)
	default:
		return false
	}
	subBits := uint(0)
	if uint(maxLen) > tb {
		subBits = uint(maxLen) - tb
		// Subtable pointers are made on first use, told by their flag:
		// none may be left from the last block.
		clear(t.main)
	}
	for s, l := range lens {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		rev := int(bits.Reverse16(uint16(c)) >> (16 - l))
		si := info[s]
		if uint(l) <= tb {
			e := si.entry | (uint32(l) + si.extra) | uint32(l)<<8
			for i := rev; i < size; i += 1 << l {
				t.main[i] = e
			}
			continue
		}
		// A code longer than the main table: its first tb bits lead to a
		// subtable indexed by the rest, made on first use.
		p := rev & (size - 1)
		if t.main[p]&entrySub == 0 {
			t.main[p] = entrySub | uint32(len(t.sub))<<16 | uint32(subBits)<<8
			for range 1 << subBits {
				t.sub = append(t.sub, entryInvalid)
			}
		}
		off := int(t.main[p] >> 16)
		rl := uint(l) - tb
		e := si.entry | (uint32(rl) + si.extra) | uint32(rl)<<8
		for i := rev >> tb; i < 1<<subBits; i += 1 << rl {
			t.sub[off+i] = e
		}
	}
	return true
}

func fill(s []uint32, v uint32) {
	for i := range s {
		s[i] = v
	}
}
