package inflate

import (
	"io"
)

// Buffer sizes. The output buffer holds the 32 KiB window and then what
// one decode call produces; slack past the limit lets the fast loop write
// a whole match, and a few bytes more, without checking each byte.
const (
	inBufSize  = 64 << 10
	chunkSize  = 256 << 10
	outSlack   = 512
	outBufSize = windowSize + chunkSize + outSlack
)

// Decoder states between calls of decode: where in the stream the next
// byte comes from.
const (
	stateHeader  = iota // a block header is next
	stateStored         // inside a stored block, storedLeft bytes to go
	stateHuffman        // inside a Huffman block, tables built
	stateDone           // the final block has ended
)

// decoder decodes one DEFLATE stream after another (gzip's members) from
// r into out. It is a pull decoder: it reads r whenever it needs input,
// and stops only at a symbol boundary, so its state between calls is
// small (see the state constants).
type decoder struct {
	r      io.Reader
	in     []byte // input buffer: in[ip:iend] is not read yet
	ip     int
	iend   int
	inBase int64 // the input offset of in[0]
	eof    bool  // r has nothing more: io.EOF, or rerr
	rerr   error // r's error other than io.EOF, returned once its bytes are needed

	// bits holds the next nb bits of input, the first in bit 0. Above
	// them it holds either zeros or the very bytes at in[ip:] (the fast
	// refill loads 8 bytes and counts only the whole ones that fit), so
	// OR-ing those bytes in again is harmless. Whoever takes bytes from
	// in[ip:] directly clears what is above nb first (see clearAhead).
	bits uint64
	nb   uint

	out    []byte // window then output; len outBufSize
	op     int    // where the next byte is written
	hstart int    // where the current stream's data starts in out: no distance reaches before it
	olimit int    // decoding stops once op reaches it

	state      int
	final      bool // the current block is the last of the stream
	storedLeft int

	lit, dist, clen table
	lens            [numLitLen + numDist]uint8
}

func (d *decoder) reset(r io.Reader) {
	if d.in == nil {
		d.in = make([]byte, inBufSize)
		d.out = make([]byte, outBufSize)
	}
	d.r = r
	d.ip, d.iend, d.inBase = 0, 0, 0
	d.eof, d.rerr = false, nil
	d.bits, d.nb = 0, 0
	d.op, d.hstart = 0, 0
	d.olimit = len(d.out) - outSlack
	d.newStream()
}

// newStream starts the next DEFLATE stream at the next input byte, with
// no history: a gzip member's distances never reach into the one before.
func (d *decoder) newStream() {
	d.hstart = d.op
	d.state = stateHeader
	d.final = false
}

// offset is the input offset of the next unread bit's byte, for messages.
func (d *decoder) offset() int64 {
	return d.inBase + int64(d.ip) - int64(d.nb/8)
}

func (d *decoder) corrupt(reason string) error {
	return &CorruptError{Offset: d.offset(), Reason: reason}
}

// fill moves what is left of the input buffer to its start and reads
// more into it. It reports whether there are new bytes.
func (d *decoder) fill() bool {
	if d.eof {
		return false
	}
	if d.ip > 0 {
		n := copy(d.in, d.in[d.ip:d.iend])
		d.inBase += int64(d.ip)
		d.ip, d.iend = 0, n
	}
	for d.iend < len(d.in) {
		n, err := d.r.Read(d.in[d.iend:])
		d.iend += n
		if err != nil {
			if err != io.EOF {
				d.rerr = err
			}
			d.eof = true
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	return true
}

// inputErr is the error for input that is needed and not there.
func (d *decoder) inputErr() error {
	if d.rerr != nil {
		return d.rerr
	}
	return io.ErrUnexpectedEOF
}

// need makes sure the bit buffer holds at least n bits (n <= 56).
func (d *decoder) need(n uint) error {
	for d.nb < n {
		if d.ip == d.iend && !d.fill() {
			return d.inputErr()
		}
		d.bits |= uint64(d.in[d.ip]) << d.nb
		d.ip++
		d.nb += 8
	}
	return nil
}

// refillSlow loads whole bytes into the bit buffer while they fit and the
// input has them, reading r when its buffer is empty.
func (d *decoder) refillSlow() {
	for d.nb <= 56 {
		if d.ip == d.iend && !d.fill() {
			return
		}
		d.bits |= uint64(d.in[d.ip]) << d.nb
		d.ip++
		d.nb += 8
	}
}

func (d *decoder) take(n uint) uint32 {
	v := uint32(d.bits & (1<<n - 1))
	d.bits >>= n
	d.nb -= n
	return v
}

// alignByte drops the bits up to the next byte boundary (RFC 1951 3.2.4:
// a stored block's LEN, and gzip's trailer, start on one).
func (d *decoder) alignByte() {
	d.take(d.nb & 7)
}

// clearAhead zeroes the bits above nb, before bytes are taken from the
// input buffer past the bit buffer.
func (d *decoder) clearAhead() {
	d.bits &= 1<<d.nb - 1
}

// readByte reads a whole byte at a byte boundary: from the bit buffer
// first, then from the input.
func (d *decoder) readByte() (byte, error) {
	if d.nb >= 8 {
		return byte(d.take(8)), nil
	}
	d.clearAhead()
	if d.ip == d.iend && !d.fill() {
		return 0, d.inputErr()
	}
	b := d.in[d.ip]
	d.ip++
	return b, nil
}

// moreInput reports whether any input follows, at a byte boundary.
func (d *decoder) moreInput() bool {
	return d.nb >= 8 || d.ip < d.iend || d.fill()
}

// decode decodes up to about chunkSize bytes and returns them; they stay
// valid until the next call. done is true once the stream's final block
// has ended. On an error, the bytes decoded before it are returned too.
func (d *decoder) decode() (chunk []byte, done bool, err error) {
	if d.op >= windowSize+chunkSize/2 {
		// Keep the window, and no more than the current stream's data.
		keep := min(d.op-d.hstart, windowSize)
		copy(d.out, d.out[d.op-keep:d.op])
		d.op, d.hstart = keep, 0
	}
	start := d.op
	for d.op < d.olimit && err == nil {
		switch d.state {
		case stateHeader:
			if d.final {
				d.state = stateDone
				continue
			}
			err = d.blockHeader()
		case stateStored:
			err = d.stored()
		case stateHuffman:
			err = d.huffman()
		case stateDone:
			return d.out[start:d.op], true, nil
		}
	}
	return d.out[start:d.op], false, err
}

// blockHeader reads a block's header (RFC 1951 3.2.3) and, for a dynamic
// block, its code lengths (3.2.7), and builds the decode tables.
func (d *decoder) blockHeader() error {
	if err := d.need(3); err != nil {
		return err
	}
	h := d.take(3)
	d.final = h&1 != 0
	switch h >> 1 {
	case 0:
		d.alignByte()
		var b [4]byte
		for i := range b {
			c, err := d.readByte()
			if err != nil {
				return err
			}
			b[i] = c
		}
		n := uint16(b[0]) | uint16(b[1])<<8
		if nn := uint16(b[2]) | uint16(b[3])<<8; nn != ^n {
			return d.corrupt("a stored block's LEN and NLEN do not match")
		}
		d.storedLeft = int(n)
		d.state = stateStored
		return nil
	case 1:
		d.fixedTables()
	case 2:
		if err := d.dynamicTables(); err != nil {
			return err
		}
	default:
		return d.corrupt("block type 3 is reserved")
	}
	d.state = stateHuffman
	return nil
}

// stored copies a stored block's bytes, as many as fit.
func (d *decoder) stored() error {
	for d.storedLeft > 0 && d.op < d.olimit {
		if d.nb >= 8 {
			d.out[d.op] = byte(d.take(8))
			d.op++
			d.storedLeft--
			continue
		}
		d.clearAhead()
		if d.ip == d.iend && !d.fill() {
			return d.inputErr()
		}
		n := copy(d.out[d.op:min(d.op+d.storedLeft, d.olimit)], d.in[d.ip:d.iend])
		d.ip += n
		d.op += n
		d.storedLeft -= n
	}
	if d.storedLeft == 0 {
		d.state = stateHeader
	}
	return nil
}

var fixedLit, fixedDist table

func init() {
	var lens [numLitLen + numDist]uint8
	for i := range numLitLen {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	for i := range numDist {
		lens[numLitLen+i] = 5
	}
	fixedLit.build(lens[:numLitLen], litLenInfo[:], litTableBits)
	fixedDist.build(lens[numLitLen:], distInfo[:], distTableBits)
}

// fixedTables sets the tables of RFC 1951 3.2.6's fixed codes. They are
// copied (10 KiB) rather than shared so that the decode loop always reads
// d's own tables.
func (d *decoder) fixedTables() {
	d.lit.main = append(d.lit.main[:0], fixedLit.main...)
	d.lit.sub = append(d.lit.sub[:0], fixedLit.sub...)
	d.dist.main = append(d.dist.main[:0], fixedDist.main...)
	d.dist.sub = append(d.dist.sub[:0], fixedDist.sub...)
}

// codeLengthOrder is RFC 1951 3.2.7's order of the code length code's
// lengths.
var codeLengthOrder = [numCodeLen]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// codeLenInfo makes the code length alphabet's entries carry the symbol.
var codeLenInfo = func() (info [numCodeLen]symInfo) {
	for s := range info {
		info[s] = symInfo{entry: uint32(s) << 16}
	}
	return info
}()

// dynamicTables reads a dynamic block's code lengths (RFC 1951 3.2.7)
// and builds its tables, refusing what compress/flate refuses.
func (d *decoder) dynamicTables() error {
	if err := d.need(14); err != nil {
		return err
	}
	nlit := int(d.take(5)) + 257
	ndist := int(d.take(5)) + 1
	nclen := int(d.take(4)) + 4
	if nlit > maxLitLen {
		return d.corrupt("more than 286 literal/length codes")
	}
	if ndist > maxDist {
		return d.corrupt("more than 30 distance codes")
	}
	var clens [numCodeLen]uint8
	for i := range nclen {
		if err := d.need(3); err != nil {
			return err
		}
		clens[codeLengthOrder[i]] = uint8(d.take(3))
	}
	if !d.clen.build(clens[:], codeLenInfo[:], clenTableBits) {
		return d.corrupt("the code length code is over-subscribed or incomplete")
	}
	lens := d.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		d.refillSlow()
		e := d.clen.main[d.bits&(1<<clenTableBits-1)]
		n := uint(e & entryBits)
		if e&entryInvalid != 0 {
			if d.nb == 0 {
				return d.inputErr()
			}
			return d.corrupt("an invalid code length code")
		}
		if n > d.nb {
			return d.inputErr()
		}
		d.take(n)
		sym := e >> 16
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var v uint8
		switch sym {
		case 16:
			if i == 0 {
				return d.corrupt("a repeat code length code with nothing to repeat")
			}
			if err := d.need(2); err != nil {
				return err
			}
			rep, v = 3+int(d.take(2)), lens[i-1]
		case 17:
			if err := d.need(3); err != nil {
				return err
			}
			rep = 3 + int(d.take(3))
		default:
			if err := d.need(7); err != nil {
				return err
			}
			rep = 11 + int(d.take(7))
		}
		if i+rep > len(lens) {
			return d.corrupt("code lengths repeat past the end")
		}
		for range rep {
			lens[i] = v
			i++
		}
	}
	if !d.lit.build(lens[:nlit], litLenInfo[:], litTableBits) {
		return d.corrupt("the literal/length code is over-subscribed or incomplete")
	}
	if !d.dist.build(lens[nlit:], distInfo[:], distTableBits) {
		return d.corrupt("the distance code is over-subscribed or incomplete")
	}
	return nil
}
