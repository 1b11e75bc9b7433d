package ext4w

// check_export_test.go exports the self-check to the external test
// package (ext4w_test), where the fuzzers and the tests that rebuild
// images live: they need tarflat, which imports ext4w.

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"testing"
	"time"
)

// SelfCheck is selfCheck for ext4w_test.
func SelfCheck(path string) error { return selfCheck(path) }

// SetHtreeMaxLeaves lowers the most leaf blocks a hashed directory may
// have, so that a test reaches the limit with thousands of names, not
// millions; it returns what restores it.
func SetHtreeMaxLeaves(n int) (restore func()) {
	old := htreeMaxLeaves
	htreeMaxLeaves = n
	return func() { htreeMaxLeaves = old }
}

// CheckImage is checkImage for ext4w_test.
func CheckImage(t testing.TB, path string) {
	t.Helper()
	checkImage(t, path)
}

// CheckedEntry is what ReadBack found at one path of an image.
type CheckedEntry struct {
	Ino                uint32
	Type               FileType
	Perm               uint32 // permission bits, setuid, setgid and sticky
	Uid, Gid           uint32
	Size               int64
	Links              int
	Linkname           string
	Devmajor, Devminor uint32
	Atime, Ctime       time.Time
	Mtime, Crtime      time.Time
	Xattrs             map[string][]byte
	Data               [32]byte // sha256 of a regular file's content, holes as zeros
}

// ReadBack self-checks the image and lists every path in it ("." is the
// root) with its metadata and a hash of its content, so that a fuzzer can
// compare the image with what it asked for.
func ReadBack(path string) (map[string]CheckedEntry, error) {
	c, err := readImage(path)
	if c != nil {
		defer c.close()
	}
	if err != nil {
		return nil, err
	}
	out := map[string]CheckedEntry{}
	var walk func(ino uint32, p string) error
	walk = func(ino uint32, p string) error {
		n := c.inodes[ino]
		e, err := c.entry(n)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out[p] = e
		for _, d := range n.ents {
			q := d.name
			if p != "." {
				q = p + "/" + d.name
			}
			if c.inodes[d.ino].mode&0xF000 == sIFDIR {
				if err := walk(d.ino, q); err != nil {
					return err
				}
				continue
			}
			e, err := c.entry(c.inodes[d.ino])
			if err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			out[q] = e
		}
		return nil
	}
	return out, walk(inoRoot, ".")
}

func decodeCkTime(lo, extra uint32) time.Time {
	sec := int64(int32(lo)) + int64(extra&3)<<32
	return time.Unix(sec, int64(extra>>2)).UTC()
}

func (c *checker) entry(n *ckInode) (CheckedEntry, error) {
	le := binary.LittleEndian
	b := n.raw
	e := CheckedEntry{
		Ino: n.ino, Perm: uint32(n.mode & 0o7777), Uid: n.uid, Gid: n.gid, Size: int64(n.size), Links: int(n.links),
		Linkname: n.linkTarget, Devmajor: n.devMajor, Devminor: n.devMinor, Xattrs: n.xattrs,
		Atime:  decodeCkTime(le.Uint32(b[0x08:]), le.Uint32(b[0x8C:])),
		Ctime:  decodeCkTime(le.Uint32(b[0x0C:]), le.Uint32(b[0x84:])),
		Mtime:  decodeCkTime(le.Uint32(b[0x10:]), le.Uint32(b[0x88:])),
		Crtime: decodeCkTime(le.Uint32(b[0x90:]), le.Uint32(b[0x94:])),
	}
	switch n.mode & 0xF000 {
	case sIFREG:
		e.Type = TypeRegular
		h := sha256.New()
		if err := c.hashData(h, n); err != nil {
			return e, err
		}
		copy(e.Data[:], h.Sum(nil))
	case sIFDIR:
		e.Type = TypeDir
	case sIFLNK:
		e.Type = TypeSymlink
	case sIFCHR:
		e.Type = TypeCharDev
	case sIFBLK:
		e.Type = TypeBlockDev
	case sIFIFO:
		e.Type = TypeFifo
	case sIFSOCK:
		e.Type = TypeSocket
	}
	return e, nil
}

// hashData feeds a regular file's content to h, holes as zeros.
func (c *checker) hashData(h hash.Hash, n *ckInode) error {
	var zeros [blockSize]byte
	left := n.size
	blk := uint64(0)
	put := func(p []byte) {
		k := min(uint64(len(p)), left)
		h.Write(p[:k])
		left -= k
	}
	for _, x := range n.exts {
		for ; blk < uint64(x.logical) && left > 0; blk++ {
			put(zeros[:])
		}
		b, err := c.read(x.start, uint64(x.len))
		if err != nil {
			return err
		}
		put(b)
		blk += uint64(x.len)
	}
	for left > 0 {
		put(zeros[:])
	}
	return nil
}
