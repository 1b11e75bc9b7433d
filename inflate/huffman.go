package inflate

import "encoding/binary"

// huffman decodes a Huffman block's symbols until its end, the output
// limit, or an error. The fast loop runs while the input buffer has 8
// bytes to load at once; at the end of the input, symbols are decoded one
// at a time with the bit buffer filled byte by byte.
func (d *decoder) huffman() error {
	for d.op < d.olimit {
		if d.iend-d.ip >= 8 {
			eob, err := d.fast()
			if err != nil || eob {
				return err
			}
			continue
		}
		if !d.eof && d.fill() && d.iend-d.ip >= 8 {
			continue
		}
		eob, err := d.slowSymbol()
		if err != nil || eob {
			return err
		}
	}
	return nil
}

// fast is the decode loop. Each turn refills the bit buffer with one
// unaligned 8-byte load (libdeflate's branchless refill: at least 56
// bits, enough for a length code, its extra bits, a distance code and
// its extra bits, 15+5+15+13), then decodes literals, a
// match or the block's end. It returns when the block ends, the output
// reaches its limit or fewer than 8 input bytes are left.
func (d *decoder) fast() (eob bool, err error) {
	bits, nb := d.bits, d.nb
	in := d.in[:d.iend]
	ip := d.ip
	out := d.out
	op := d.op
	hstart := d.hstart
	lit := (*[1 << litTableBits]uint32)(d.lit.main)
	dist := (*[1 << distTableBits]uint32)(d.dist.main)
	litSub, distSub := d.lit.sub, d.dist.sub
	ilimit := len(in) - 8
	olimit := d.olimit

	for ip <= ilimit && op < olimit {
		bits |= binary.LittleEndian.Uint64(in[ip:]) << (nb & 63)
		ip += int((63 - nb) >> 3)
		nb |= 56

		e := lit[bits&(1<<litTableBits-1)]
		if e&entryLiteral != 0 {
			// Up to three literals fit in the bits of one refill
			// (3*11); a match after them needs a new refill.
			bits >>= e & entryBits
			nb -= uint(e & entryBits)
			out[op] = byte(e >> 16)
			op++
			e = lit[bits&(1<<litTableBits-1)]
			if e&entryLiteral == 0 {
				continue
			}
			bits >>= e & entryBits
			nb -= uint(e & entryBits)
			out[op] = byte(e >> 16)
			op++
			e = lit[bits&(1<<litTableBits-1)]
			if e&entryLiteral == 0 {
				continue
			}
			bits >>= e & entryBits
			nb -= uint(e & entryBits)
			out[op] = byte(e >> 16)
			op++
			continue
		}
		if e&entrySpecial != 0 {
			if e&entrySub != 0 {
				bits >>= litTableBits
				nb -= litTableBits
				e = litSub[int(e>>16)+int(bits&(1<<(e>>8&15)-1))]
				if e&entryLiteral != 0 {
					bits >>= e & entryBits
					nb -= uint(e & entryBits)
					out[op] = byte(e >> 16)
					op++
					continue
				}
			}
			if e&entryEOB != 0 {
				bits >>= e & entryBits
				nb -= uint(e & entryBits)
				eob = true
				break
			}
			if e&entryInvalid != 0 {
				err = errInvalidLitLen
				break
			}
		}
		// A length, then its distance.
		n := e & entryBits
		length := int(e>>16) + int((bits&(1<<n-1))>>(e>>8&15))
		bits >>= n
		nb -= uint(n)

		e = dist[bits&(1<<distTableBits-1)]
		if e&entrySpecial != 0 {
			if e&entrySub != 0 {
				bits >>= distTableBits
				nb -= distTableBits
				e = distSub[int(e>>16)+int(bits&(1<<(e>>8&15)-1))]
			}
			if e&entrySpecial != 0 {
				err = errInvalidDist
				break
			}
		}
		n = e & entryBits
		dst := int(e>>16) + int((bits&(1<<n-1))>>(e>>8&15))
		bits >>= n
		nb -= uint(n)
		if dst > op-hstart {
			err = errTooFar
			break
		}
		if dst >= 8 && length <= 16 {
			// Most matches are short: two 8-byte copies, inline.
			src := op - dst
			binary.LittleEndian.PutUint64(out[op:], binary.LittleEndian.Uint64(out[src:]))
			binary.LittleEndian.PutUint64(out[op+8:], binary.LittleEndian.Uint64(out[src+8:]))
			op += length
			continue
		}
		op = copyMatch(out, op, dst, length)
	}

	d.bits, d.nb, d.ip, d.op = bits, nb, ip, op
	if eob {
		d.state = stateHeader
	}
	if err != nil {
		return false, d.corrupt(err.Error())
	}
	return eob, nil
}

// copyMatch copies length bytes from dst back, at op, and returns the new
// op. It copies 8 bytes at a time and may write up to 7 bytes past the
// match (the slack past olimit): a distance of 8 or more never reads a
// byte this copy has yet to write.
func copyMatch(out []byte, op, dst, length int) int {
	src := op - dst
	end := op + length
	switch {
	case dst >= 8:
		for op < end {
			binary.LittleEndian.PutUint64(out[op:], binary.LittleEndian.Uint64(out[src:]))
			op += 8
			src += 8
		}
	case dst == 1:
		v := uint64(out[src]) * 0x0101010101010101
		for op < end {
			binary.LittleEndian.PutUint64(out[op:], v)
			op += 8
		}
	default:
		for ; op < end; op++ {
			out[op] = out[src]
			src++
		}
	}
	return end
}

// Reasons for corrupt data found by the decode loops.
var (
	errInvalidLitLen = reasonError("an invalid literal/length code")
	errInvalidDist   = reasonError("an invalid distance code")
	errTooFar        = reasonError("a distance reaches back before the start of the stream")
)

type reasonError string

func (e reasonError) Error() string { return string(e) }

// slowSymbol decodes one symbol (a literal, a match or the block's end)
// near the end of the input, where an 8-byte load would read past it.
// What the input lacks reads as zero bits: a code that needs them is a
// truncated stream.
func (d *decoder) slowSymbol() (eob bool, err error) {
	d.refillSlow()
	e := d.lit.main[d.bits&(1<<litTableBits-1)]
	if e&entrySub != 0 {
		if d.nb < litTableBits {
			return false, d.inputErr()
		}
		d.take(litTableBits)
		e = d.lit.sub[int(e>>16)+int(d.bits&(1<<(e>>8&15)-1))]
	}
	n := uint(e & entryBits)
	switch {
	case e&entryInvalid != 0 && d.nb == 0:
		return false, d.inputErr()
	case e&entryInvalid != 0:
		return false, d.corrupt(errInvalidLitLen.Error())
	case n > d.nb:
		return false, d.inputErr()
	case e&entryLiteral != 0:
		d.take(n)
		d.out[d.op] = byte(e >> 16)
		d.op++
		return false, nil
	case e&entryEOB != 0:
		d.take(n)
		d.state = stateHeader
		return true, nil
	}
	length := int(e>>16) + int(d.take(n)>>(e>>8&15))

	d.refillSlow()
	e = d.dist.main[d.bits&(1<<distTableBits-1)]
	if e&entrySub != 0 {
		if d.nb < distTableBits {
			return false, d.inputErr()
		}
		d.take(distTableBits)
		e = d.dist.sub[int(e>>16)+int(d.bits&(1<<(e>>8&15)-1))]
	}
	n = uint(e & entryBits)
	switch {
	case e&entryInvalid != 0 && d.nb == 0:
		return false, d.inputErr()
	case e&entryInvalid != 0:
		return false, d.corrupt(errInvalidDist.Error())
	case n > d.nb:
		return false, d.inputErr()
	}
	dst := int(e>>16) + int(d.take(n)>>(e>>8&15))
	if dst > d.op-d.hstart {
		return false, d.corrupt(errTooFar.Error())
	}
	d.op = copyMatch(d.out, d.op, dst, length)
	return false, nil
}
