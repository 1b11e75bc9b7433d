package ext4w

// check_corrupt_test.go shows that the self-check catches real
// corruption: each case damages a fresh image in one way, some with
// every checksum fixed up afterwards so that only the structural checks
// can see it. Where e2fsck looks at the same thing, it must agree that
// the image is damaged, which shows the damage is real.

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// corruptBase builds the image every case starts from: two groups (so
// there is a backup superblock), files with one and several extents and
// an extent tree block, a hashed directory, a subdirectory, and two
// files sharing an xattr block.
func corruptBase(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "base.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, WithSize(256<<20), WithSalt([]byte("corrupt")))
	if err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	put := func(name string, size int, fill func(i int) byte, x map[string][]byte) {
		t.Helper()
		data := make([]byte, size)
		for i := range data {
			data[i] = fill(i)
		}
		if err := w.Create(name, &File{Type: TypeRegular, Mode: 0o644, Size: int64(size), Mtime: mt, Xattrs: x}); err != nil {
			t.Fatal(err)
		}
		if size > 0 {
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("f", 20000, func(i int) byte { return byte(i%251 + 1) }, nil)
	put("g", 5000, func(i int) byte { return byte(i%13 + 1) }, nil)
	// Every other block a hole: 8 extents, more than i_block holds.
	put("tree", 16*blockSize, func(i int) byte { return byte((i/blockSize+1)%2) * 7 }, nil)
	shared := map[string][]byte{"user.big": []byte(strings.Repeat("shared value ", 200))}
	put("x1", 0, nil, shared)
	put("x2", 0, nil, shared)
	if err := w.Create("sub", &File{Type: TypeDir, Mode: 0o755, Mtime: mt}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		put(fmt.Sprintf("d/name-%04d", i), 0, nil, nil)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// corruptor edits an image in place, with the clean image's layout as
// the check read it.
type corruptor struct {
	t *testing.T
	f *os.File
	c *checker
}

func (x *corruptor) read(off int64, n int) []byte {
	b := make([]byte, n)
	if _, err := x.f.ReadAt(b, off); err != nil {
		x.t.Fatal(err)
	}
	return b
}

func (x *corruptor) write(off int64, b []byte) {
	if _, err := x.f.WriteAt(b, off); err != nil {
		x.t.Fatal(err)
	}
}

// ino returns the inode number of a name in the root, or under d.
func (x *corruptor) ino(path string) uint32 {
	dir := x.c.inodes[inoRoot]
	parts := strings.Split(path, "/")
	for i, p := range parts {
		found := false
		for _, e := range dir.ents {
			if e.name == p {
				if i == len(parts)-1 {
					return e.ino
				}
				dir, found = x.c.inodes[e.ino], true
				break
			}
		}
		if !found {
			break
		}
	}
	x.t.Fatalf("%s not found", path)
	return 0
}

func (x *corruptor) inodeOff(ino uint32) int64 {
	g, i := uint64(ino-1)/x.c.ipg, uint64(ino-1)%x.c.ipg
	gd := &x.c.gds[g]
	return int64(uint64(gd.InodeTableHi)<<32|uint64(gd.InodeTableLo))*blockSize + int64(i)*inodeSize
}

// editInode changes inode ino with fn and, if fix, sets its checksum.
func (x *corruptor) editInode(ino uint32, fix bool, fn func(b []byte)) {
	off := x.inodeOff(ino)
	b := x.read(off, inodeSize)
	fn(b)
	if fix {
		setInodeChecksum(b, ino, x.c.seed, true)
	}
	x.write(off, b)
}

// editBlock changes block blk with fn.
func (x *corruptor) editBlock(blk uint64, fn func(b []byte)) {
	b := x.read(int64(blk)*blockSize, blockSize)
	fn(b)
	x.write(int64(blk)*blockSize, b)
}

// editGroup changes group g's descriptor (primary and backups) with fn,
// and sets its checksum.
func (x *corruptor) editGroup(g uint64, fn func(d []byte)) {
	for _, bg := range backupGroupsOf(x.c.groups) {
		off := int64(bg*blocksPerGroup+1)*blockSize + int64(g)*descSize
		d := x.read(off, descSize)
		fn(d)
		binary.LittleEndian.PutUint16(d[0x1E:], 0)
		binary.LittleEndian.PutUint16(d[0x1E:], uint16(crc32c(crc32cU32(x.c.seed, uint32(g)), d)))
		x.write(off, d)
	}
}

// editSuper changes the primary superblock and its backups and sets
// their checksums.
func (x *corruptor) editSuper(fn func(sb []byte)) {
	for _, bg := range backupGroupsOf(x.c.groups) {
		off := int64(bg*blocksPerGroup) * blockSize
		if bg == 0 {
			off = superblockOffset
		}
		sb := x.read(off, superblockSize)
		fn(sb)
		binary.LittleEndian.PutUint32(sb[0x3FC:], crc32c(^uint32(0), sb[:0x3FC]))
		x.write(off, sb)
	}
}

// setBlockBit marks block blk used or free, and fixes the bitmap's
// checksum and the free counts, so that only the owner check sees it.
func (x *corruptor) setBlockBit(blk uint64, used bool) {
	g, i := blk/blocksPerGroup, blk%blocksPerGroup
	gd := &x.c.gds[g]
	bb := uint64(gd.BlockBitmapHi)<<32 | uint64(gd.BlockBitmapLo)
	var sum uint32
	x.editBlock(bb, func(b []byte) {
		if used {
			b[i/8] |= 1 << (i % 8)
		} else {
			b[i/8] &^= 1 << (i % 8)
		}
		sum = crc32c(x.c.seed, b)
	})
	delta := 1
	if used {
		delta = -1
	}
	x.editGroup(g, func(d []byte) {
		le := binary.LittleEndian
		le.PutUint16(d[0x0C:], uint16(int(le.Uint16(d[0x0C:]))+delta))
		le.PutUint16(d[0x18:], uint16(sum))
		le.PutUint16(d[0x38:], uint16(sum>>16))
	})
	x.editSuper(func(sb []byte) {
		le := binary.LittleEndian
		le.PutUint32(sb[0x0C:], uint32(int(le.Uint32(sb[0x0C:]))+delta))
	})
}

// editDirBlock changes a directory's block and fixes its tail checksum.
func (x *corruptor) editDirBlock(dirIno uint32, logical int, fn func(b []byte)) {
	n := x.c.inodes[dirIno]
	blk := n.exts[0].start + uint64(logical)
	x.editBlock(blk, func(b []byte) {
		fn(b)
		setDirTail(b, inodeSeed(x.c.seed, dirIno, 0))
	})
}

// findEntry returns the offset of name's entry in a directory block.
func findEntry(t *testing.T, b []byte, name string) int {
	for off := 0; off < dirLeafSpace; {
		rl := int(binary.LittleEndian.Uint16(b[off+4:]))
		if int(b[off+6]) == len(name) && string(b[off+8:off+8+len(name)]) == name {
			return off
		}
		if rl == 0 {
			break
		}
		off += rl
	}
	t.Fatalf("no entry %q", name)
	return 0
}

func TestSelfCheckCatchesCorruption(t *testing.T) {
	le := binary.LittleEndian
	for _, tc := range []struct {
		name string
		want string // in the self-check's report
		// fsck: e2fsck -fn must find a problem too. It does not look
		// at everything this check does (backup superblocks, say).
		fsck bool
		fn   func(x *corruptor)
	}{
		{"inode byte flipped", "checksum", true, func(x *corruptor) {
			x.editInode(x.ino("f"), false, func(b []byte) { b[0x04] ^= 0x40 })
		}},
		{"directory block byte flipped", "checksum", true, func(x *corruptor) {
			root := x.c.inodes[inoRoot]
			x.editBlock(root.exts[0].start, func(b []byte) { b[findEntry(t, b, "sub")+8] ^= 0x01 })
		}},
		{"block bitmap bit flipped", "block bitmap checksum", true, func(x *corruptor) {
			gd := &x.c.gds[0]
			x.editBlock(uint64(gd.BlockBitmapLo), func(b []byte) { b[4000] ^= 0x10 })
		}},
		{"GDT byte flipped", "descriptor checksum", true, func(x *corruptor) {
			off := int64(blockSize) + 0x0E // group 0's free inodes count, primary only
			b := x.read(off, 1)
			x.write(off, []byte{b[0] ^ 0x02})
		}},
		{"a free block marked used, checksums fixed", "nothing owns it", true, func(x *corruptor) {
			x.setBlockBit(x.c.blocks-10, true)
		}},
		{"a file's block marked free, checksums fixed", "the bitmap says it is free", true, func(x *corruptor) {
			x.setBlockBit(x.c.inodes[x.ino("f")].exts[0].start+1, false)
		}},
		{"a block claimed twice, checksum fixed", "claimed twice", true, func(x *corruptor) {
			f := x.c.inodes[x.ino("f")]
			x.editInode(x.ino("g"), true, func(b []byte) {
				// i_block: header, then the first extent's start_lo.
				le.PutUint32(b[0x28+12+8:], uint32(f.exts[0].start))
			})
		}},
		{"link count off by one, checksum fixed", "links", true, func(x *corruptor) {
			x.editInode(x.ino("g"), true, func(b []byte) { le.PutUint16(b[0x1A:], 2) })
		}},
		{"directory's link count, checksum fixed", "subdirectories", true, func(x *corruptor) {
			x.editInode(inoRoot, true, func(b []byte) { le.PutUint16(b[0x1A:], le.Uint16(b[0x1A:])+1) })
		}},
		{"entry file type wrong, checksum fixed", "file type", true, func(x *corruptor) {
			x.editDirBlock(inoRoot, 0, func(b []byte) { b[findEntry(t, b, "f")+7] = ftSymlink })
		}},
		{"rec_len chain broken, checksum fixed", "rec_len", true, func(x *corruptor) {
			x.editDirBlock(x.ino("sub"), 0, func(b []byte) {
				o := findEntry(t, b, "..")
				le.PutUint16(b[o+4:], le.Uint16(b[o+4:])+8)
			})
		}},
		{"htree leaves swapped, checksums fixed", "hashes outside", true, func(x *corruptor) {
			d := x.ino("d")
			x.editBlock(x.c.inodes[d].exts[0].start, func(b []byte) {
				count := int(le.Uint16(b[dxRootCountOff+2:]))
				if count < 3 {
					t.Fatalf("the htree has %d leaves", count)
				}
				a, z := b[dxRootCountOff+4:dxRootCountOff+8], b[dxRootCountOff+8+4:dxRootCountOff+8+8]
				av := le.Uint32(a)
				le.PutUint32(a, le.Uint32(z))
				le.PutUint32(z, av)
				es := make([]dxEntry, count)
				for i := range es {
					es[i] = dxEntry{hash: le.Uint32(b[dxRootCountOff+8*i:]), block: le.Uint32(b[dxRootCountOff+8*i+4:])}
				}
				putDxEntries(b, dxRootCountOff, dxRootLimit, es, inodeSeed(x.c.seed, d, 0))
			})
		}},
		{"dx_root byte flipped", "dx_tail checksum", true, func(x *corruptor) {
			x.editBlock(x.c.inodes[x.ino("d")].exts[0].start, func(b []byte) { b[dxRootCountOff+9] ^= 0x80 })
		}},
		{"extent tree block byte flipped", "extent tree block", true, func(x *corruptor) {
			n := x.c.inodes[x.ino("tree")]
			ib := n.raw[0x28:]
			leaf := uint64(le.Uint16(ib[12+8:]))<<32 | uint64(le.Uint32(ib[12+4:]))
			x.editBlock(leaf, func(b []byte) { b[12+4] ^= 0x01 })
		}},
		{"xattr refcount wrong, checksum fixed", "h_refcount", true, func(x *corruptor) {
			blk := x.c.inodes[x.ino("x1")].xattrBlock
			x.editBlock(blk, func(b []byte) { finishXattrBlock(b, 3, blk, x.c.seed) })
		}},
		{"superblock free count, checksum fixed", "superblock says", true, func(x *corruptor) {
			x.editSuper(func(sb []byte) { le.PutUint32(sb[0x10:], le.Uint32(sb[0x10:])-1) })
		}},
		{"inode bitmap padding cleared", "padding", true, func(x *corruptor) {
			x.editBlock(uint64(x.c.gds[0].InodeBitmapLo), func(b []byte) { b[blockSize-1] = 0 })
		}},
		{"a stale inode past bg_itable_unused", "not zeros", false, func(x *corruptor) {
			// An old image's inode where the kernel expects zeros; e2fsck
			// trusts ITABLE_ZEROED and does not look.
			x.write(x.inodeOff(x.c.inodes[x.ino("f")].ino+2000), []byte{0xA4, 0x81, 0, 0, 9})
		}},
		{"backup superblock differs, checksum fixed", "backup superblock differs", false, func(x *corruptor) {
			off := int64(blocksPerGroup) * blockSize
			sb := x.read(off, superblockSize)
			sb[0x78] = 'X' // the label
			le.PutUint32(sb[0x3FC:], crc32c(^uint32(0), sb[:0x3FC]))
			x.write(off, sb)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := corruptBase(t)
			c, err := readImage(img)
			if err != nil {
				t.Fatalf("the clean image: %v", err)
			}
			c.close()
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			tc.fn(&corruptor{t: t, f: f, c: c})
			f.Close()
			err = selfCheck(img)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("self-check: %v; want a report of %q", err, tc.want)
			} else {
				t.Logf("self-check: %v", err)
			}
			if tc.fsck && haveE2fsck(t) {
				if res, err := oracle.RunFsck(img); err != nil || res.Clean() {
					t.Errorf("e2fsck -fn finds the damaged image clean (%v): the damage is not real", err)
				}
			}
		})
	}
}

// haveE2fsck says whether e2fsck can run, to confirm that the damage is
// real. Outside CI a machine without it still runs the self-check part;
// in CI, where .ci/run installs e2fsprogs, its absence fails the test.
func haveE2fsck(t *testing.T) bool {
	for _, p := range []string{"e2fsck", "/usr/sbin/e2fsck", "/sbin/e2fsck"} {
		if _, err := exec.LookPath(p); err == nil {
			return true
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("e2fsck not found (apt-get install e2fsprogs); CI must have it")
	}
	return false
}
