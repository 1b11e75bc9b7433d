package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/tarflat"
)

// imageFlags are the flags image and make-bundle share.
func imageFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "rootfs-tar", Usage: "the rootfs tar (plain, gzip or zstd); - reads standard input"},
		&cli.StringFlag{Name: "size", Usage: "image size: bytes, or with K/M/G/T (KiB.. powers of 1024) or KB/MB/GB/TB (powers of 1000); default: 1.5x the content, at least 64 MiB"},
		&cli.Uint64Flag{Name: "inodes", Usage: "inode count (default: 1.5x the entries, at least one per 16 KiB)"},
		&cli.StringFlag{Name: "label", Usage: "volume label, at most 16 bytes"},
		&cli.StringFlag{Name: "uuid", Usage: "filesystem UUID (default: derived from the input, so equal input gives an equal image)"},
	}
}

func imageCommand() *cli.Command {
	return &cli.Command{
		Name:      "image",
		Usage:     "write an ext4 image from a rootfs tar",
		UsageText: "ext4pack image --rootfs-tar FILE|- --out IMAGE [--size SIZE] [--inodes N] [--label L] [--uuid U]",
		Description: `Example:
   docker export $(docker create debian:bookworm) | ext4pack image --rootfs-tar - --out rootfs.ext4`,
		Flags: append(imageFlags(),
			&cli.StringFlag{Name: "out", Usage: "the image file to write"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("image takes no arguments, got %q", c.Args().Slice())
			}
			opts, err := writerOptions(c)
			if err != nil {
				return err
			}
			out := c.String("out")
			if out == "" {
				return usagef("image needs --out IMAGE")
			}
			_, err = buildImage(c, out, opts)
			return err
		},
	}
}

// writerOptions turns the shared flags into ext4w options.
func writerOptions(c *cli.Context) ([]ext4w.Option, error) {
	if c.String("rootfs-tar") == "" {
		return nil, usagef("--rootfs-tar FILE|- is required")
	}
	var opts []ext4w.Option
	salt := []string{"ext4pack " + version}
	if s := c.String("size"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return nil, usagef("--size %q: %v", s, err)
		}
		if n < ext4w.MinSize {
			return nil, usagef("--size %q: the minimum is 64 MiB", s)
		}
		if n > ext4w.MaxSize {
			return nil, usagef("--size %q: the maximum is 16 TiB", s)
		}
		opts = append(opts, ext4w.WithSize(n))
	}
	if c.IsSet("inodes") {
		n := c.Uint64("inodes")
		if n == 0 || n >= 1<<32 {
			return nil, usagef("--inodes %d: out of range 1..%d", n, uint64(1<<32-1))
		}
		opts = append(opts, ext4w.WithInodes(n))
	}
	if l := c.String("label"); l != "" {
		if len(l) > 16 {
			return nil, usagef("--label %q is %d bytes, the limit is 16", l, len(l))
		}
		opts = append(opts, ext4w.WithLabel(l))
	}
	if u := c.String("uuid"); u != "" {
		b, err := parseUUID(u)
		if err != nil {
			return nil, usagef("--uuid %q: %v", u, err)
		}
		opts = append(opts, ext4w.WithUUID(b))
	}
	if s, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, usagef("SOURCE_DATE_EPOCH=%q is not a non-negative number of seconds", s)
		}
		t := time.Unix(n, 0)
		opts = append(opts, ext4w.WithDefaultTime(t), ext4w.WithSuperblockTime(t))
		salt = append(salt, "epoch="+s)
	}
	for _, f := range []string{"size", "inodes", "label"} {
		salt = append(salt, f+"="+c.String(f))
	}
	opts = append(opts, ext4w.WithSalt([]byte(strings.Join(salt, "\x00"))))
	opts = append(opts, ext4w.WithWarn(func(m string) { fmt.Fprintf(c.App.ErrWriter, "ext4pack: warning: %s\n", m) }))
	return opts, nil
}

// openInput opens --rootfs-tar, "-" being standard input.
func openInput(name string) (io.ReadCloser, error) {
	if name == "-" {
		if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			// Most likely a terminal, where reading would wait for a tar
			// nobody types. /dev/null is let through: it is an empty
			// input, and says so.
			if null, err := os.Stat(os.DevNull); err != nil || !os.SameFile(st, null) {
				return nil, usagef("--rootfs-tar - reads the tar from standard input, which is a terminal; pipe a tar in (docker export ... | ext4pack ...)")
			}
		}
		return io.NopCloser(os.Stdin), nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("rootfs tar: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("rootfs tar: %w", err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("rootfs tar %s is a directory", name)
	}
	return f, nil
}

// inputName is how messages name --rootfs-tar.
func inputName(name string) string {
	if name == "-" {
		return "standard input"
	}
	return name
}

// buildImage streams the tar into a new image at out, in one pass and
// without holding the tar in memory: ext4w sizes the image at Close when
// --size is not given. Nothing is left at out, nor beside it, unless it
// succeeds.
func buildImage(c *cli.Context, out string, opts []ext4w.Option) (tarflat.Info, error) {
	f, err := createTemp(out)
	if err != nil {
		return tarflat.Info{}, err
	}
	p := newProgress(c)
	info, err := writeImage(c, f, p, opts, nil)
	p.done()
	if err != nil {
		discard(f)
		return info, describe(c, err, out)
	}
	return info, commit(f, out)
}

// writeImage streams --rootfs-tar into an image written to f. beforeClose,
// if not nil, runs after the last tar entry and before the image is closed
// (make-bundle adds its guest files there).
func writeImage(c *cli.Context, f *os.File, p *progress, opts []ext4w.Option, beforeClose func(*ext4w.Writer, tarflat.Info) error) (tarflat.Info, error) {
	src := c.String("rootfs-tar")
	in, err := openInput(src)
	if err != nil {
		return tarflat.Info{}, err
	}
	defer in.Close()
	warn := func(m string) { fmt.Fprintf(c.App.ErrWriter, "ext4pack: warning: %s\n", m) }
	r := tarflat.NewReader(p.reader(in, "reading "+inputName(src)), tarflat.WithWarn(warn))
	defer r.Close()
	w, err := ext4w.NewWriter(f, opts...)
	if err != nil {
		return tarflat.Info{}, err
	}
	info, err := tarflat.Copy(w, r)
	if err != nil {
		return info, fmt.Errorf("%s: %w", inputName(src), err)
	}
	if beforeClose != nil {
		if err := beforeClose(w, info); err != nil {
			return info, err
		}
	}
	// Close lays out all metadata while the whole tree is in memory, and
	// its buffers come on top: collecting more often from here keeps the
	// peak near the live tree (a few percent of CPU, at the end only).
	defer tightenGC(25)()
	return info, w.Close()
}

// tightenGC lowers the GC percentage to at most pct, unless collection is
// off, and returns what restores it.
func tightenGC(pct int) (restore func()) {
	old := debug.SetGCPercent(pct)
	if old < 0 || old < pct {
		debug.SetGCPercent(old)
	}
	return func() { debug.SetGCPercent(old) }
}

// describe adds what a user needs to an error: how much a too small
// image needs, and the output path for a full disk.
func describe(c *cli.Context, err error, out string) error {
	const mib = 1 << 20
	var se *ext4w.SizeError
	switch {
	case errors.As(err, &se) && errors.Is(err, ext4w.ErrTooManyInodes):
		return fmt.Errorf("not enough inodes: the tar needs at least %d, the image would have %d; raise --inodes (or leave it out to size it from the tar)",
			se.NeedInodes, se.HaveInodes)
	case errors.As(err, &se):
		need := (se.NeedBytes + mib - 1) / mib
		return fmt.Errorf("--size %s is too small: the tar needs at least %d MiB, the image has %d MiB (the first entry that did not fit is %q); use --size %dM or more, or leave --size out to size the image from the tar",
			c.String("size"), need, se.HaveBytes/mib, se.FirstFailed, need)
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("writing %s: no space left on device; nothing was left behind (%w)", out, err)
	case errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("writing %s: disk quota exceeded; nothing was left behind (%w)", out, err)
	}
	return err
}

// parseSize reads SPEC's sizes: bytes, K/M/G/T and KiB/MiB/GiB/TiB as
// powers of 1024, KB/MB/GB/TB as powers of 1000, fractions allowed. The
// result is rounded up to a whole 4 KiB block.
func parseSize(s string) (int64, error) {
	num := strings.TrimRightFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	unit := s[len(num):]
	mult := map[string]float64{
		"": 1, "B": 1,
		"K": 1 << 10, "KiB": 1 << 10, "KB": 1e3,
		"M": 1 << 20, "MiB": 1 << 20, "MB": 1e6,
		"G": 1 << 30, "GiB": 1 << 30, "GB": 1e9,
		"T": 1 << 40, "TiB": 1 << 40, "TB": 1e12,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q (use K, M, G, T, KiB.., or KB, MB, GB, TB)", unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	b := v * mult
	if b > float64(ext4w.MaxSize) {
		return 0, fmt.Errorf("%s is more than the 16 TiB maximum", s)
	}
	n := int64(b)
	if float64(n) < b {
		n++
	}
	return (n + 4095) / 4096 * 4096, nil
}

// parseUUID reads a UUID in its usual 8-4-4-4-12 hex form.
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, errors.New("not in the 8-4-4-4-12 hex form")
	}
	for i := range u {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			return u, errors.New("not hex")
		}
		u[i] = byte(v)
	}
	return u, nil
}
