package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"github.com/urfave/cli/v2"

	"github.com/ext4pack/ext4pack"
	"github.com/ext4pack/ext4pack/bundle"
	"github.com/ext4pack/ext4pack/ext4w"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show an image's or a bundle's filesystem, and entries in it",
		UsageText: "ext4pack inspect IMAGE|BUNDLE [PATH...]",
		Description: `Reads the image with a pure-Go ext4 reader; runs no external program.
Example:
   ext4pack inspect rootfs.ext4 /etc/passwd /usr/bin/passwd`,
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usagef("inspect needs IMAGE or BUNDLE")
			}
			p := newProgress(c)
			defer p.done()
			return inspect(c.App.Writer, p, c.Args().First(), c.Args().Tail())
		},
	}
}

// inspect prints the filesystem summary and one line per path.
func inspect(out io.Writer, p *progress, name string, paths []string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	img, cleanup, err := openImage(out, p, f)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer cleanup()
	sb, err := ext4w.ReadSuperblock(img)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	printSuperblock(out, sb)
	if len(paths) == 0 {
		return nil
	}
	st, err := img.Stat()
	if err != nil {
		return err
	}
	rfs, err := readFS(img, st.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	for _, p := range paths {
		line, err := describePath(rfs, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		fmt.Fprintln(out, line)
	}
	return errors.Join(errs...)
}

// openImage returns the image to read: f itself, or for a bundle (zstd
// magic) its rootfs.ext4, extracted sparsely to a temporary file that
// cleanup removes, after printing the manifest.
func openImage(out io.Writer, p *progress, f *os.File) (*os.File, func(), error) {
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil {
		return nil, nil, fmt.Errorf("reading: %w", err)
	}
	if magic != [4]byte{0x28, 0xb5, 0x2f, 0xfd} {
		return f, func() {}, nil
	}
	// Registered like any output, so that a signal removes it too.
	tmp, err := createTemp(filepath.Join(os.TempDir(), "ext4pack-inspect.ext4"))
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { discard(tmp) }
	m, err := bundle.ExtractRootfs(context.Background(), bufio.NewReaderSize(f, 1<<20), tmp,
		bundle.WithProgress(func(done, total int64) {
			p.report(ext4pack.Progress{Stage: "checking the bundle's rootfs.ext4", Done: done, Total: total})
		}))
	p.done()
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	fmt.Fprintf(out, "manifest: %s\n", b)
	return tmp, cleanup, nil
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

func printSuperblock(out io.Writer, sb *ext4w.Superblock) {
	bs := sb.BlockSize()
	total := sb.BlocksCount()
	free := sb.FreeBlocks()
	inodes := uint64(sb.InodesCount)
	freeInodes := uint64(sb.FreeInodesCount)
	label := strings.TrimRight(string(sb.VolumeName[:]), "\x00")
	u := sb.UUID
	fmt.Fprintf(out, "filesystem: ext4\n")
	fmt.Fprintf(out, "size: %d bytes (%s)\n", total*bs, humanBytes(total*bs))
	fmt.Fprintf(out, "uuid: %x-%x-%x-%x-%x\n", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	if label != "" {
		fmt.Fprintf(out, "label: %s\n", label)
	}
	fmt.Fprintf(out, "features: %s\n", strings.Join(sb.Features(), " "))
	fmt.Fprintf(out, "block size: %d\n", bs)
	fmt.Fprintf(out, "blocks: %d used of %d (%s used, %s free)\n", total-free, total, humanBytes((total-free)*bs), humanBytes(free*bs))
	fmt.Fprintf(out, "inodes: %d used of %d\n", inodes-freeInodes, inodes)
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// describePath is one line: path, type, mode, uid:gid, size, mtime.
func describePath(rfs *ext4.FileSystem, p string) (line string, err error) {
	defer guard(&err)
	clean := path.Clean("/" + p)
	fi, err := rfs.Stat(clean)
	if err != nil {
		return "", err
	}
	st, _ := fi.Sys().(*ext4.StatT)
	var uid, gid uint32
	extra := ""
	if st != nil {
		uid, gid = st.UID, st.GID
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			extra = " -> " + st.LinkTarget
		case fi.Mode()&fs.ModeDevice != 0:
			extra = fmt.Sprintf(" device %d:%d", st.Major, st.Minor)
		}
	}
	return fmt.Sprintf("%s\t%s\t%04o\t%d:%d\t%d\t%s%s", clean, typeName(fi.Mode()), unixPerm(fi.Mode()), uid, gid,
		fi.Size(), fi.ModTime().UTC().Format(time.RFC3339Nano), extra), nil
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
