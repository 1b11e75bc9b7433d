//go:build linux

package main

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ext4pack/ext4pack/internal/boottest"
)

// debian describes the Debian tar a run used.
type debian struct {
	source    string // where it came from, for the report
	path      string // its copy in the work directory
	size      int64
	entries   int
	imageSize int64 // the size of ext4pack's image of it
}

// debianTar finds or builds the Debian rootfs tar and copies it into work,
// so that every pipeline reads it from the tmpfs.
func debianTar(ctx context.Context, c config, work string) (debian, error) {
	var d debian
	src, how := c.tar, "BENCH_TAR"
	if src == "" {
		// The boot test's rootfs, from its cache or debootstrapped now.
		var err error
		if src, how, err = boottest.DebianRootfsTar(ctx, logf); err != nil {
			return d, err
		}
	}
	d.source = fmt.Sprintf("%s (%s)", src, how)
	d.path = filepath.Join(work, "debian.tar")
	if err := copyFile(src, d.path); err != nil {
		return d, err
	}
	st, err := os.Stat(d.path)
	if err != nil {
		return d, err
	}
	d.size = st.Size()
	if d.entries, err = countEntries(d.path); err != nil {
		return d, fmt.Errorf("%s: %w", src, err)
	}
	return d, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// countEntries counts a plain tar's headers.
func countEntries(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	n := 0
	for {
		_, err := tr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("not a plain tar (the harness needs one): %w", err)
		}
		n++
	}
}
