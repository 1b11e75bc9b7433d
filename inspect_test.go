package ext4pack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/bundle"
	"github.com/ext4pack/ext4pack/ext4w"
)

// superblock returns the first block of an image of size bytes whose
// superblock (at byte 1024) has the magic, 4 KiB blocks and the block
// count; without metadata_csum it has no checksum to get right. edit
// changes the superblock's fields first.
func superblock(t *testing.T, size int64, edit func(*ext4w.Superblock)) []byte {
	t.Helper()
	sb := ext4w.Superblock{Magic: 0xEF53, LogBlockSize: 2}
	blocks := uint64(size / 4096)
	sb.BlocksCountLo, sb.BlocksCountHi = uint32(blocks), uint32(blocks>>32)
	if edit != nil {
		edit(&sb)
	}
	b, err := binary.Append(make([]byte, 1024), binary.LittleEndian, &sb)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, make([]byte, 4096-len(b))...)
}

// TestCheckRootfs: the check inspect gives bundle.ExtractRootfs refuses
// the starts of images that are not ext4 of their size, which bundle's
// TestExtractHostile shows are refused before any hashing. The 15 TiB
// cases are issue 15's bundles of a few hundred bytes.
func TestCheckRootfs(t *testing.T) {
	const tib = int64(1) << 40
	small := int64(64 << 10)
	for _, tc := range []struct {
		name string
		head []byte
		size int64
		msg  string // "" for a plausible image
	}{
		{"an image of its size", superblock(t, small, nil), small, ""},
		{"a tail shorter than a block", superblock(t, small, nil), small + 4095, ""},
		{"15 TiB of holes", make([]byte, 4096), 15 * tib, "no ext4 superblock"},
		{"a 64 KiB filesystem in a 15 TiB member", superblock(t, small, nil), 15 * tib, "describes 16 blocks of 4096 bytes, but the image is 16492674416640 bytes"},
		{"a 15 TiB filesystem in a 64 KiB member", superblock(t, 15*tib, nil), small, "but the image is 65536 bytes"},
		{"block size", superblock(t, small, func(sb *ext4w.Superblock) { sb.LogBlockSize = 20 }), small, "block size of 2^20 KiB"},
		// metadata_csum (ro_compat 0x400), with no checksum.
		{"checksum", superblock(t, small, func(sb *ext4w.Superblock) { sb.FeatureROCompat |= 0x400 }), small, "checksum"},
		{"too short for a superblock", make([]byte, 1000), 1000, "1000 bytes is too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkRootfs(tc.head, tc.size)
			switch {
			case tc.msg == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.msg != "" && (!errors.Is(err, ErrRootfsNotExt4) || !strings.Contains(err.Error(), tc.msg)):
				t.Errorf("error %v, want ErrRootfsNotExt4 saying %q", err, tc.msg)
			}
		})
	}
}

// TestLimits: what the library, the writer and the bundle reader say of
// the largest image agree.
func TestLimits(t *testing.T) {
	sizes := []int64{MaxSize, ext4w.MaxSize, bundle.MaxRootfsSize}
	for _, n := range sizes {
		if n != 16<<40 {
			t.Errorf("MaxSize, ext4w.MaxSize, bundle.MaxRootfsSize: %d, want all 16 TiB", sizes)
		}
	}
}

// TestInspect: Inspect of a bundle MakeBundle wrote gives its manifest,
// the filesystem and the paths asked for, and one it lacks as an entry's
// error; the image it extracted is gone.
func TestInspect(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	out := filepath.Join(dir, "tiny.tar.zst")
	o := Options{Arch: "x86_64", Label: "tiny", Bundle: &BundleOptions{Name: "tiny", NoAgents: true}}
	res, err := MakeBundle(context.Background(), Source{Tar: bytes.NewReader(bigTar(t, 5000))}, out, o)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	in, err := Inspect(context.Background(), out, []string{"big", "/nope"}, func(p Progress) {
		if !slices.Contains(stages, p.Stage) {
			stages = append(stages, p.Stage)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if in.Manifest == nil || *in.Manifest != res.Manifest {
		t.Errorf("manifest %+v, want %+v", in.Manifest, res.Manifest)
	}
	fs := in.Filesystem
	if fs.Label != "tiny" || fs.BlockSize != 4096 || int64(fs.Blocks*fs.BlockSize) != res.Manifest.RootfsSizeBytes ||
		fs.FreeBlocks >= fs.Blocks || fs.FreeInodes >= fs.Inodes || !slices.Contains(fs.Features, "metadata_csum") {
		t.Errorf("filesystem %+v", fs)
	}
	if len(in.Entries) != 2 {
		t.Fatalf("entries %+v, want 2", in.Entries)
	}
	if e := in.Entries[0]; e.Err != nil || e.Path != "/big" || e.Type != "regular" || e.Perm != 0o644 || e.Size != 5000 || e.Mtime.Year() != 2024 {
		t.Errorf("entry %+v", e)
	}
	if e := in.Entries[1]; e.Err == nil || !strings.HasPrefix(e.Err.Error(), "/nope: ") {
		t.Errorf("entry %+v, want an error naming /nope", e)
	}
	if !slices.Equal(stages, []string{"checking the bundle's rootfs.ext4"}) {
		t.Errorf("progress stages %q", stages)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*inspect*")); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}
