package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ext4pack/ext4pack"
)

func inspectCommand(s *session) *cli.Command {
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
			var in *ext4pack.Inspection
			err := s.do(func() (string, error) {
				var err error
				in, err = ext4pack.Inspect(c.Context, c.Args().First(), c.Args().Tail(), p.report)
				return "", err
			})
			p.done()
			if in != nil {
				// What was read before an error too.
				if perr := printInspection(c.App.Writer, in); err == nil {
					err = perr
				}
			}
			return err
		},
	}
}

// printInspection prints the manifest of a bundle, the filesystem
// summary, and one line per path; the paths that could not be read make
// the error it returns.
func printInspection(out io.Writer, in *ext4pack.Inspection) error {
	if in.Manifest != nil {
		b, err := json.MarshalIndent(in.Manifest, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "manifest: %s\n", b)
	}
	printFilesystem(out, in.Filesystem)
	var errs []error
	for _, e := range in.Entries {
		if e.Err != nil {
			errs = append(errs, e.Err)
			continue
		}
		fmt.Fprintln(out, entryLine(e))
	}
	return errors.Join(errs...)
}

func printFilesystem(out io.Writer, fs ext4pack.Filesystem) {
	bs, total, free := fs.BlockSize, fs.Blocks, fs.FreeBlocks
	u := fs.UUID
	fmt.Fprintf(out, "filesystem: ext4\n")
	fmt.Fprintf(out, "size: %d bytes (%s)\n", total*bs, humanBytes(total*bs))
	fmt.Fprintf(out, "uuid: %x-%x-%x-%x-%x\n", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	if fs.Label != "" {
		fmt.Fprintf(out, "label: %s\n", fs.Label)
	}
	fmt.Fprintf(out, "features: %s\n", strings.Join(fs.Features, " "))
	fmt.Fprintf(out, "block size: %d\n", bs)
	fmt.Fprintf(out, "blocks: %d used of %d (%s used, %s free)\n", total-free, total, humanBytes((total-free)*bs), humanBytes(free*bs))
	fmt.Fprintf(out, "inodes: %d used of %d\n", fs.Inodes-fs.FreeInodes, fs.Inodes)
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

// entryLine is one path: path, type, mode, uid:gid, size, mtime, and a
// symlink's target or a device's numbers.
func entryLine(e ext4pack.Entry) string {
	extra := ""
	switch e.Type {
	case "symlink":
		extra = " -> " + e.Target
	case "char", "block":
		extra = fmt.Sprintf(" device %d:%d", e.Major, e.Minor)
	}
	return fmt.Sprintf("%s\t%s\t%04o\t%d:%d\t%d\t%s%s", e.Path, e.Type, e.Perm, e.Uid, e.Gid,
		e.Size, e.Mtime.UTC().Format(time.RFC3339Nano), extra)
}
