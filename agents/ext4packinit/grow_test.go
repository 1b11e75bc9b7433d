package main

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// ext4wImage writes an empty image of size bytes with ext4w.
func ext4wImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rootfs.ext4")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ext4w.NewWriter(f, ext4w.WithSize(size))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func superblockOf(t *testing.T, image string) superblock {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, err := readSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// TestParseSuperblock reads superblocks that ext4w and mke2fs wrote and
// compares each field with what dumpe2fs says of it.
func TestParseSuperblock(t *testing.T) {
	oracle.RequireTool(t, "mkfs.ext4", "e2fsprogs")
	images := map[string]string{
		"ext4w 64MiB": ext4wImage(t, 64<<20),
		"ext4w 3GiB":  ext4wImage(t, 3<<30),
	}
	// mke2fs with 1 KiB blocks and without 64bit: first data block 1,
	// 32-byte group descriptors.
	small := filepath.Join(t.TempDir(), "1k.ext4")
	if err := os.WriteFile(small, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(small, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "1024", "-O", "^64bit", small).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	images["mke2fs 1k"] = small
	for name, image := range images {
		t.Run(name, func(t *testing.T) {
			sb := superblockOf(t, image)
			h := oracle.Dumpe2fsHeader(t, image)
			for field, got := range map[string]uint64{
				"Block count":         sb.blocks,
				"Block size":          sb.blockSize,
				"First block":         sb.firstDataBlock,
				"Blocks per group":    sb.blocksPerGroup,
				"Inodes per group":    sb.inodesPerGroup,
				"Inode size":          sb.inodeSize,
				"Reserved GDT blocks": sb.reservedGDT,
			} {
				want, err := strconv.ParseUint(h[field], 10, 64)
				if err != nil {
					t.Fatalf("dumpe2fs %q: %q", field, h[field])
				}
				if got != want {
					t.Errorf("%s: %d, dumpe2fs says %d", field, got, want)
				}
			}
			wantDesc := uint64(32)
			if d := h["Group descriptor size"]; d != "" {
				wantDesc, _ = strconv.ParseUint(d, 10, 64)
			}
			if sb.descSize != wantDesc {
				t.Errorf("descriptor size %d, dumpe2fs says %d", sb.descSize, wantDesc)
			}
			if (sb.compat&compatResizeInode != 0) != strings.Contains(h["Filesystem features"], "resize_inode") {
				t.Errorf("resize_inode: compat %#x, features %q", sb.compat, h["Filesystem features"])
			}
			// A filesystem as large as its image has nothing to grow.
			if got, err := growTarget(sb, sb.blocks*sb.blockSize); got != sb.blocks || err != nil {
				t.Errorf("growTarget at its own size = %d, %v; want %d", got, err, sb.blocks)
			}
		})
	}
}

func TestParseSuperblockErrors(t *testing.T) {
	good := make([]byte, sbSize)
	le := binary.LittleEndian
	le.PutUint16(good[sbMagic:], ext4Magic)
	le.PutUint32(good[sbBlocksCountLo:], 16384)
	le.PutUint32(good[sbLogBlockSize:], 2)
	le.PutUint32(good[sbBlocksPerGroup:], 32768)
	le.PutUint32(good[sbInodesPerGroup:], 4096)
	le.PutUint16(good[sbInodeSize:], 256)
	if _, err := parseSuperblock(good); err != nil {
		t.Fatalf("a sane superblock: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
		want string
	}{
		{"short", func(b []byte) []byte { return b[:100] }, "100 bytes"},
		{"magic", func(b []byte) []byte { le.PutUint16(b[sbMagic:], 0x1234); return b }, "no ext4 superblock"},
		{"block size", func(b []byte) []byte { le.PutUint32(b[sbLogBlockSize:], 40); return b }, "block size"},
		{"no groups", func(b []byte) []byte { le.PutUint32(b[sbBlocksPerGroup:], 0); return b }, "blocks and"},
		{"inode size", func(b []byte) []byte { le.PutUint16(b[sbInodeSize:], 8); return b }, "inodes of 8 bytes"},
		{"desc size", func(b []byte) []byte {
			le.PutUint32(b[sbFeatureIncompat:], incompat64bit)
			le.PutUint16(b[sbDescSize:], 48)
			return b
		}, "descriptors of 48"},
		{"cluster", func(b []byte) []byte {
			le.PutUint32(b[sbFeatureROCompat:], roCompatBigalloc)
			le.PutUint32(b[sbLogClusterSize:], 1)
			return b
		}, "cluster size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(append([]byte(nil), good...))
			if _, err := parseSuperblock(b); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	b := append([]byte(nil), good...)
	le.PutUint16(b[sbMagic:], 0)
	if _, err := parseSuperblock(b); !errors.Is(err, errNotExt4) {
		t.Errorf("err = %v, want errNotExt4", err)
	}
}

// TestGrowTarget is the decision: how many blocks to ask the kernel for,
// given a 64 MiB image's superblock (as ext4w writes it: 16384 blocks of
// 4 KiB, 4096 inodes of 256 bytes a group, 7 reserved GDT blocks).
func TestGrowTarget(t *testing.T) {
	base := superblock{
		blocks: 16384, blockSize: 4096, clusterRatio: 1, blocksPerGroup: 32768,
		inodesPerGroup: 4096, inodeSize: 256, descSize: 64, reservedGDT: 7,
		compat: compatResizeInode, incompat: incompat64bit,
	}
	const gib = 1 << 30
	// The smallest last group the kernel keeps after 4 GiB (group 32):
	// it has no superblock backup, but the bound counts one anyway, with
	// 1 GDT block + 7 reserved + 2 bitmaps + 256 inode table + 1 cluster,
	// and the kernel wants one block more than that.
	const keepable = 1 + 1 + 7 + 2 + 256 + 1 + 1
	for _, tc := range []struct {
		name   string
		edit   func(*superblock)
		device uint64
		want   uint64
		err    string
	}{
		{name: "equal", device: 64 << 20, want: 16384},
		{name: "a partial block more", device: 64<<20 + 4095, want: 16384},
		{name: "smaller device", device: 32 << 20, err: "smaller than the filesystem"},
		{name: "one block more", device: 64<<20 + 4096, want: 16385},
		{name: "4 GiB", device: 4 * gib, want: 1 << 20},
		{name: "64 GiB", device: 64 * gib, want: 16 << 20},
		{name: "1 TiB", device: 1024 * gib, want: 256 << 20},
		{name: "tiny last group left out", device: 4*gib + 64*4096, want: 1 << 20},
		{name: "last group just too small", device: 4*gib + (keepable-1)*4096, want: 1 << 20},
		{name: "last group just large enough", device: 4*gib + keepable*4096, want: 1<<20 + keepable},
		{name: "a new group within the old one's reach", device: 32768*4096 + 100*4096, want: 32768,
			edit: func(s *superblock) { s.blocks = 20000 }},
		{name: "inode count limit", device: 1 << 60, want: (1<<32 - 1) / 4096 * 32768},
		{name: "32-bit block count", device: 1 << 50, want: 1<<32 - 1,
			edit: func(s *superblock) { s.incompat = 0; s.inodesPerGroup = 16 }},
		{name: "bigalloc rounds to a cluster", device: 4*gib + 17*4096, want: 1 << 20,
			edit: func(s *superblock) { s.clusterRatio = 16 }},
		{name: "meta_bg without resize_inode", device: 4 * gib, want: 1 << 20,
			edit: func(s *superblock) { s.compat = 0; s.incompat |= incompatMetaBG }},
		{name: "neither resize_inode nor meta_bg", device: 4 * gib, err: "neither resize_inode nor meta_bg",
			edit: func(s *superblock) { s.compat = 0 }},
		{name: "neither, nothing to do", device: 64 << 20, want: 16384,
			edit: func(s *superblock) { s.compat = 0 }},
		{name: "sparse_super2", device: 4 * gib, err: "sparse_super2",
			edit: func(s *superblock) { s.compat |= compatSparseSuper2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			if tc.edit != nil {
				tc.edit(&s)
			}
			got, err := growTarget(s, tc.device)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("growTarget = %d, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("growTarget = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 bytes", 1023: "1023 bytes", 64 << 20: "64.0 MiB", 4 << 30: "4.0 GiB",
		1 << 40: "1.0 TiB", 1536 << 20: "1.5 GiB",
	} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
