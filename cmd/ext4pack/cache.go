package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ext4pack/ext4pack"
)

// cacheMaxEnv caps the blob cache when --cache-max does not.
const cacheMaxEnv = "EXT4PACK_CACHE_MAX"

func cacheDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "cache", Usage: "the blob cache's directory (default: $XDG_CACHE_HOME/ext4pack/blobs, else ~/.cache/ext4pack/blobs)"}
}

func cacheCommand() *cli.Command {
	return &cli.Command{
		Name:  "cache",
		Usage: "list or trim the cache of registry blobs that image and make-bundle keep",
		Description: `Examples:
   ext4pack cache ls
   ext4pack cache prune --max-size 2G
   ext4pack cache prune --all`,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("cache needs ls or prune")
			}
			return usagef("cache %q: use ls or prune", c.Args().First())
		},
		Subcommands: []*cli.Command{
			{
				Name:      "ls",
				Usage:     "list the cached blobs, least recently used first, and their total",
				UsageText: "ext4pack cache ls [--cache DIR]",
				Flags:     []cli.Flag{cacheDirFlag()},
				Action:    cacheList,
			},
			{
				Name:      "prune",
				Usage:     "remove the least recently used blobs down to the cap (" + cacheMaxEnv + ", else 10 GiB), to --max-size, or all of them",
				UsageText: "ext4pack cache prune [--all | --max-size SIZE] [--cache DIR]",
				Flags: []cli.Flag{
					cacheDirFlag(),
					&cli.BoolFlag{Name: "all", Usage: "remove every blob"},
					&cli.StringFlag{Name: "max-size", Usage: "keep at most SIZE (K/M/G/T, KiB.., KB..)"},
				},
				Action: cachePrune,
			},
		},
	}
}

func cacheList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("cache ls takes no arguments, got %q", c.Args().Slice())
	}
	dir, err := cacheDirOf(c)
	if err != nil {
		return err
	}
	list, err := ext4pack.ListCache(dir)
	if err != nil {
		return err
	}
	out := c.App.Writer
	var total int64
	for _, e := range list {
		total += e.Size
		fmt.Fprintf(out, "%s  %10s  %s  %s\n", e.Digest, humanBytes(uint64(e.Size)), e.Used.Local().Format("2006-01-02 15:04:05"), strings.Join(e.Names, ", "))
	}
	fmt.Fprintf(out, "%d blobs, %s, in %s\n", len(list), humanBytes(uint64(total)), dir)
	return nil
}

func cachePrune(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("cache prune takes no arguments, got %q", c.Args().Slice())
	}
	if c.Bool("all") && c.IsSet("max-size") {
		return usagef("--all and --max-size are two sizes; give one")
	}
	dir, err := cacheDirOf(c)
	if err != nil {
		return err
	}
	var max int64
	switch {
	case c.Bool("all"):
	case c.IsSet("max-size"):
		if max, err = sizeFlag("--max-size", c.String("max-size")); err != nil {
			return err
		}
	default:
		if max, err = cacheMax(c); err != nil {
			return err
		}
		if max == 0 {
			max = ext4pack.DefaultCacheMaxSize
		}
	}
	removed, err := ext4pack.PruneCache(dir, max)
	if err != nil {
		return err
	}
	var freed int64
	for _, e := range removed {
		freed += e.Size
	}
	left, err := ext4pack.ListCache(dir)
	if err != nil {
		return err
	}
	var total int64
	for _, e := range left {
		total += e.Size
	}
	fmt.Fprintf(c.App.Writer, "removed %d blobs, %s; %d blobs, %s, left in %s\n", len(removed), humanBytes(uint64(freed)), len(left), humanBytes(uint64(total)), dir)
	return nil
}

// cacheDirOf is --cache, else the default.
func cacheDirOf(c *cli.Context) (string, error) {
	if d := c.String("cache"); d != "" {
		return d, nil
	}
	return ext4pack.DefaultCacheDir()
}

// cacheMax is --cache-max, else $EXT4PACK_CACHE_MAX, else 0 (the
// library's default).
func cacheMax(c *cli.Context) (int64, error) {
	if c.IsSet("cache-max") {
		return sizeFlag("--cache-max", c.String("cache-max"))
	}
	if s := os.Getenv(cacheMaxEnv); s != "" {
		return sizeFlag(cacheMaxEnv, s)
	}
	return 0, nil
}

// sizeFlag reads a cache size: bytes, or SPEC's units.
func sizeFlag(what, s string) (int64, error) {
	n, err := parseSize(s)
	if err != nil {
		return 0, usagef("%s %q: %v", what, s, err)
	}
	return n, nil
}
