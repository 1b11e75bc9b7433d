package ext4pack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"

	"github.com/ext4pack/ext4pack/bundle"
	"github.com/ext4pack/ext4pack/ext4w"
)

// Inspection is what Inspect read from an image or a bundle.
type Inspection struct {
	// Manifest is the bundle's manifest.json; nil for an image.
	Manifest *Manifest
	// Filesystem is what the image's superblock says.
	Filesystem Filesystem
	// Entries are the paths Inspect was asked about, in their order.
	Entries []Entry
}

// Filesystem is what an ext4 image's superblock says about it.
type Filesystem struct {
	UUID      [16]byte
	Label     string   // the volume label; "" for none
	Features  []string // mkfs.ext4's names: has_journal, ext_attr, ...
	BlockSize uint64   // bytes
	// Blocks and FreeBlocks count the filesystem's blocks: Blocks times
	// BlockSize is its size.
	Blocks, FreeBlocks uint64
	Inodes, FreeInodes uint64
}

// Entry is one path of an image, as Inspect found it.
type Entry struct {
	Path  string // absolute and clean
	Type  string // "dir", "regular", "symlink", "char", "block", "fifo" or "socket"
	Perm  uint32 // the 12 permission bits: setuid, setgid, sticky and rwx
	Uid   uint32
	Gid   uint32
	Size  int64
	Mtime time.Time
	// Target is a symlink's target; Major and Minor a device's numbers.
	Target       string
	Major, Minor uint32
	// Err says why the path could not be read (it does not exist, say),
	// naming it as it was asked for; the other fields are then empty.
	Err error
}

// ErrRootfsNotExt4 is returned, wrapped, by Inspect when a bundle's
// rootfs.ext4 does not start with a valid ext4 superblock for a
// filesystem of its size: it is refused before anything is hashed.
var ErrRootfsNotExt4 = errors.New("bundle: rootfs is not an ext4 image")

// Inspect reads the ext4 image or the bundle (told by its zstd magic) at
// name, and the paths of it that paths name, with a pure-Go ext4 reader;
// it runs no external program. A bundle's image is checked against its
// manifest and extracted, sparsely, to a temporary file that Inspect
// removes before it returns, ctx cancelled or not; a manifest that claims
// more than 16 TiB or more than the rootfs member holds, or an image that
// is not ext4 of its size (ErrRootfsNotExt4), is refused before any
// hashing. progress, which may be nil, hears how far the check has come.
// A path that cannot be read is reported in its Entry, not as an error;
// an image whose superblock reads but whose tree does not gives what was
// read (the manifest, the filesystem) with the error.
func Inspect(ctx context.Context, name string, paths []string, progress func(Progress)) (*Inspection, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var in Inspection
	img, cleanup, err := openImage(ctx, f, &in, progress)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer cleanup()
	sb, err := ext4w.ReadSuperblock(img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	in.Filesystem = Filesystem{
		UUID:       sb.UUID,
		Label:      strings.TrimRight(string(sb.VolumeName[:]), "\x00"),
		Features:   sb.Features(),
		BlockSize:  sb.BlockSize(),
		Blocks:     sb.BlocksCount(),
		FreeBlocks: sb.FreeBlocks(),
		Inodes:     uint64(sb.InodesCount),
		FreeInodes: uint64(sb.FreeInodesCount),
	}
	if len(paths) == 0 {
		return &in, nil
	}
	st, err := img.Stat()
	if err != nil {
		return &in, err
	}
	rfs, err := readFS(img, st.Size())
	if err != nil {
		return &in, fmt.Errorf("%s: %w", name, err)
	}
	for _, p := range paths {
		e, err := describePath(rfs, p)
		if err != nil {
			e = Entry{Path: path.Clean("/" + p), Err: fmt.Errorf("%s: %w", p, err)}
		}
		in.Entries = append(in.Entries, e)
	}
	return &in, nil
}

// openImage returns the image to read: f itself, or for a bundle (zstd
// magic) its rootfs.ext4, extracted sparsely to a temporary file that
// cleanup removes, with the manifest put in in.
func openImage(ctx context.Context, f *os.File, in *Inspection, progress func(Progress)) (*os.File, func(), error) {
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil {
		return nil, nil, fmt.Errorf("reading: %w", err)
	}
	if magic != [4]byte{0x28, 0xb5, 0x2f, 0xfd} {
		return f, func() {}, nil
	}
	tmp, err := tempBeside(filepath.Join(os.TempDir(), "ext4pack-inspect.ext4"))
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { removeTemp(tmp) }
	// Where files are sparse only when marked so (Windows), so that the
	// holes ExtractRootfs leaves are holes; a file system that cannot
	// refuses, and the image is still right.
	_ = ext4w.MarkSparse(tmp)
	opts := []bundle.Option{bundle.WithRootfsCheck(checkRootfs)}
	if progress != nil {
		opts = append(opts, bundle.WithProgress(func(done, total int64) {
			progress(Progress{Stage: "checking the bundle's rootfs.ext4", Done: done, Total: total})
		}))
	}
	m, err := bundle.ExtractRootfs(ctx, bufio.NewReaderSize(f, 1<<20), tmp, opts...)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	in.Manifest = &m
	return tmp, cleanup, nil
}

// checkRootfs checks the start of a bundle's image of size bytes: its
// superblock (at byte 1024, whatever the block size) has ext4's magic,
// its checksum when metadata_csum is on, a block size Linux mounts (1 to
// 64 KiB), and describes a filesystem that fills the image, give or take
// the last partial block. ext4pack's images are exactly their filesystem;
// an image made by mkfs.ext4 on a file is too, but for a tail shorter than
// a block.
func checkRootfs(head []byte, size int64) error {
	const sbEnd = 2048
	if len(head) < sbEnd {
		return fmt.Errorf("%w: %d bytes is too short to hold a superblock", ErrRootfsNotExt4, size)
	}
	sb, err := ext4w.ReadSuperblock(bytes.NewReader(head))
	if err == ext4w.ErrNotExt4 {
		return fmt.Errorf("%w: no ext4 superblock (magic 0xEF53) at byte 1024", ErrRootfsNotExt4)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRootfsNotExt4, err)
	}
	if sb.LogBlockSize > 6 {
		return fmt.Errorf("%w: its superblock gives a block size of 2^%d KiB", ErrRootfsNotExt4, sb.LogBlockSize)
	}
	bs := int64(sb.BlockSize())
	blocks := sb.BlocksCount()
	if blocks > uint64(size)/uint64(bs) || size-int64(blocks)*bs >= bs {
		return fmt.Errorf("%w: its superblock describes %d blocks of %d bytes, but the image is %d bytes", ErrRootfsNotExt4, blocks, bs, size)
	}
	return nil
}

func readFS(img *os.File, size int64) (_ *ext4.FileSystem, err error) {
	defer guard(&err)
	return ext4.Read(file.New(img, true), size, 0, 0)
}

// guard turns a panic of the reader into an error: go-diskfs panics on
// some valid images (names of 248-255 bytes), and inspect never crashes.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("the ext4 reader failed: %v", r)
	}
}

// describePath finds p in rfs.
func describePath(rfs *ext4.FileSystem, p string) (e Entry, err error) {
	defer guard(&err)
	e.Path = path.Clean("/" + p)
	fi, err := rfs.Stat(e.Path)
	if err != nil {
		return e, err
	}
	e.Type, e.Perm = typeName(fi.Mode()), unixPerm(fi.Mode())
	e.Size, e.Mtime = fi.Size(), fi.ModTime()
	if st, ok := fi.Sys().(*ext4.StatT); ok {
		e.Uid, e.Gid = st.UID, st.GID
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Target = st.LinkTarget
		case fi.Mode()&fs.ModeDevice != 0:
			e.Major, e.Minor = st.Major, st.Minor
		}
	}
	return e, nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeCharDevice != 0:
		return "char"
	case m&fs.ModeDevice != 0:
		return "block"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "regular"
}

// unixPerm turns Go's mode bits back into the 12 Unix permission bits.
func unixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}
