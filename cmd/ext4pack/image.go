package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ext4pack/ext4pack"
)

// imageFlags are the flags image and make-bundle share.
func imageFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "rootfs-tar", Usage: "the rootfs tar (plain, gzip or zstd); - reads standard input"},
		&cli.StringFlag{Name: "image", Usage: "a container image instead: docker://HOST/REPO[:TAG|@DIGEST] or a bare reference, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:REF]"},
		&cli.StringFlag{Name: "platform", Usage: "os/arch[/variant] to pick from a multi-platform image (default: linux and --arch, else the host's arch)"},
		&cli.StringFlag{Name: "size", Usage: "image size: bytes, or with K/M/G/T (KiB.. powers of 1024) or KB/MB/GB/TB (powers of 1000); default: 1.5x the content, at least 64 MiB"},
		&cli.Uint64Flag{Name: "inodes", Usage: "inode count (default: 1.5x the entries, at least one per 16 KiB)"},
		&cli.StringFlag{Name: "label", Usage: "volume label, at most 16 bytes"},
		&cli.StringFlag{Name: "uuid", Usage: "filesystem UUID (default: derived from the input, so equal input gives an equal image)"},
		&cli.StringFlag{Name: "pull", Usage: "when to ask the registry: always, missing (the default: a tag's cached manifest will do) or never (offline, from the cache)"},
		&cli.IntFlag{Name: "jobs", Value: 6, Usage: "connections to the registry, 1 to 64"},
		cacheDirFlag(),
		&cli.BoolFlag{Name: "no-cache", Usage: "keep no blob: download to a temporary spool, removed at the end"},
		&cli.StringFlag{Name: "cache-max", Usage: "the blob cache's cap, least recently used evicted beyond it (default: $" + cacheMaxEnv + ", else 10 GiB)"},
	}
}

func imageCommand(s *session) *cli.Command {
	return &cli.Command{
		Name:      "image",
		Usage:     "write an ext4 image from a rootfs tar or a container image",
		UsageText: "ext4pack image (--rootfs-tar FILE|- | --image REF) --out IMAGE [--platform P] [--size SIZE] [--inodes N] [--label L] [--uuid U] [--pull always|missing|never] [--jobs N] [--cache DIR | --no-cache] [--cache-max SIZE]",
		Description: `Examples:
   docker export $(docker create debian:bookworm) | ext4pack image --rootfs-tar - --out rootfs.ext4
   ext4pack image --image docker://debian:bookworm --out rootfs.ext4
   ext4pack image --image oci:./layout:latest --out rootfs.ext4`,
		Flags: append(imageFlags(),
			&cli.StringFlag{Name: "out", Usage: "the image file to write"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("image takes no arguments, got %q", c.Args().Slice())
			}
			o, err := buildOptions(c)
			if err != nil {
				return err
			}
			out := c.String("out")
			if out == "" {
				return usagef("image needs --out IMAGE")
			}
			return buildImage(c, s, out, o)
		},
	}
}

// buildOptions turns the shared flags into the library's options.
func buildOptions(c *cli.Context) (ext4pack.Options, error) {
	var o ext4pack.Options
	tar, img := c.String("rootfs-tar"), c.String("image")
	switch {
	case tar == "" && img == "":
		return o, usagef("--rootfs-tar FILE|- or --image REF is required")
	case tar != "" && img != "":
		return o, usagef("--rootfs-tar and --image are two inputs; give one")
	case c.IsSet("platform") && img == "":
		return o, usagef("--platform picks from a container image; it needs --image")
	}
	if p := c.String("platform"); p != "" {
		parts := strings.Split(p, "/")
		if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
			return o, usagef("--platform %q: use os/arch[/variant], such as linux/arm64", p)
		}
	}
	if s := c.String("size"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return o, usagef("--size %q: %v", s, err)
		}
		if n < ext4pack.MinSize {
			return o, usagef("--size %q: the minimum is 64 MiB", s)
		}
		if n > ext4pack.MaxSize {
			return o, usagef("--size %q: the maximum is 16 TiB", s)
		}
		o.Size = n
	}
	if c.IsSet("inodes") {
		n := c.Uint64("inodes")
		if n == 0 || n >= 1<<32 {
			return o, usagef("--inodes %d: out of range 1..%d", n, uint64(1<<32-1))
		}
		o.Inodes = n
	}
	if l := c.String("label"); l != "" {
		if len(l) > 16 {
			return o, usagef("--label %q is %d bytes, the limit is 16", l, len(l))
		}
		o.Label = l
	}
	if u := c.String("uuid"); u != "" {
		b, err := parseUUID(u)
		if err != nil {
			return o, usagef("--uuid %q: %v", u, err)
		}
		o.UUID = &b
	}
	f, err := fetchOptions(c)
	if err != nil {
		return o, err
	}
	o.Fetch = f
	if s, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return o, usagef("SOURCE_DATE_EPOCH=%q is not a non-negative number of seconds", s)
		}
		t := time.Unix(n, 0).UTC()
		o.Epoch = &t
	}
	o.Warn = func(m string) { fmt.Fprintf(c.App.ErrWriter, "ext4pack: warning: %s\n", m) }
	return o, nil
}

// fetchOptions reads the flags of a registry's fetch and cache. They
// need --image: a tar is neither fetched nor cached.
func fetchOptions(c *cli.Context) (ext4pack.FetchOptions, error) {
	var f ext4pack.FetchOptions
	for _, name := range []string{"pull", "jobs", "cache", "no-cache", "cache-max"} {
		if c.IsSet(name) && c.String("image") == "" {
			return f, usagef("--%s is for a registry's image; it needs --image", name)
		}
	}
	if p := c.String("pull"); p != "" {
		if p != "always" && p != "missing" && p != "never" {
			return f, usagef("--pull %q: use always, missing or never", p)
		}
		f.Pull = p
	}
	if c.IsSet("jobs") {
		if n := c.Int("jobs"); n < 1 || n > 64 {
			return f, usagef("--jobs %d: out of range 1..64", n)
		}
		f.Jobs = c.Int("jobs")
	}
	f.CacheDir, f.NoCache = c.String("cache"), c.Bool("no-cache")
	switch {
	case f.NoCache && f.CacheDir != "":
		return f, usagef("--cache and --no-cache contradict each other; give one")
	case f.NoCache && f.Pull == "never":
		return f, usagef("--pull never builds from the cache, which --no-cache turns off")
	}
	max, err := cacheMax(c)
	if err != nil {
		return f, err
	}
	f.CacheMaxSize = max
	return f, nil
}

// source is the input the flags name: a tar file, which the library
// opens once the options are checked and the output made, standard input,
// or an image.
func source(c *cli.Context) (ext4pack.Source, error) {
	if img := c.String("image"); img != "" {
		return ext4pack.Source{Image: img, Platform: c.String("platform")}, nil
	}
	name := c.String("rootfs-tar")
	if name != "-" {
		return ext4pack.Source{TarPath: name}, nil
	}
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		// Most likely a terminal, where reading would wait for a tar
		// nobody types. /dev/null is let through: it is an empty
		// input, and says so.
		if null, err := os.Stat(os.DevNull); err != nil || !os.SameFile(st, null) {
			return ext4pack.Source{}, usagef("--rootfs-tar - reads the tar from standard input, which is a terminal; pipe a tar in (docker export ... | ext4pack ...)")
		}
	}
	return ext4pack.Source{Tar: os.Stdin, TarName: "standard input"}, nil
}

// buildImage builds the image at out. Nothing is left at out, nor beside
// it, unless it succeeds.
func buildImage(c *cli.Context, s *session, out string, o ext4pack.Options) error {
	src, err := source(c)
	if err != nil {
		return err
	}
	p := newProgress(c)
	defer p.done()
	o.Progress = p.report
	return s.do(func() (string, error) {
		_, err := ext4pack.BuildImage(c.Context, src, out, o)
		p.done()
		if err != nil {
			return "", describe(c, err)
		}
		return out, nil
	})
}

// describe adds what a user needs to an error: how much a too small
// image needs, in the flags' words. (The library names the output for a
// full disk.)
func describe(c *cli.Context, err error) error {
	const mib = 1 << 20
	var se *ext4pack.SizeError
	switch {
	case errors.As(err, &se) && errors.Is(err, ext4pack.ErrTooManyInodes):
		return fmt.Errorf("not enough inodes: %s needs at least %d, the image would have %d; raise --inodes (or leave it out to size it from the %s)",
			inputWhat(c), se.NeedInodes, se.HaveInodes, strings.TrimPrefix(inputWhat(c), "the "))
	case errors.As(err, &se):
		need := (se.NeedBytes + mib - 1) / mib
		return fmt.Errorf("--size %s is too small: %s needs at least %d MiB, the image has %d MiB (the first entry that did not fit is %q); use --size %dM or more, or leave --size out to size the image from the %s",
			c.String("size"), inputWhat(c), need, se.HaveBytes/mib, se.FirstFailed, need, strings.TrimPrefix(inputWhat(c), "the "))
	}
	return err
}

// inputWhat names the kind of input in messages.
func inputWhat(c *cli.Context) string {
	if c.String("image") != "" {
		return "the image"
	}
	return "the tar"
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
	if b > float64(ext4pack.MaxSize) {
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
