//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ext4pack/ext4pack/bundle"
)

// bundleResult is make-bundle against zstd -19 -T2 of the same image.
type bundleResult struct {
	bundle, zstd         series
	bundleSize, zstdSize int64
	sameImage            string // whether the bundle holds the image zstd read
	skipZstd             string
}

// runBundle times `ext4pack make-bundle --no-agents` from the tar, end to
// end, and `zstd -19 -T2` of ext4pack's image of the same tar, taking
// turns. --no-agents keeps the bundle's image the one zstd reads; the
// report checks that through the manifest's rootfs_sha256.
func runBundle(ctx context.Context, c config, work, tarPath, img string) (*bundleResult, error) {
	res := &bundleResult{}
	bout := filepath.Join(work, "bench.tar.zst")
	zout := filepath.Join(work, "debian.ext4.zst")
	zstdBin, err := lookTool("zstd")
	if err != nil {
		res.skipZstd = "zstd is not installed (apt-get install zstd)"
	}
	runs := []func() error{
		func() error {
			os.Remove(bout)
			s, _, err := runProc(ctx, nil, c.bin, "make-bundle", "--rootfs-tar", tarPath, "--name", "bench", "--no-agents", "--out", bout)
			if err != nil {
				return err
			}
			st, err := os.Stat(bout)
			if err != nil {
				return err
			}
			res.bundle = append(res.bundle, s)
			res.bundleSize = st.Size()
			logf("make-bundle --no-agents        %7.2f s  %6.1f MiB  %d B", s.wall.Seconds(), float64(s.maxRSS)/(1<<20), st.Size())
			return nil
		},
	}
	if zstdBin != "" {
		runs = append(runs, func() error {
			os.Remove(zout)
			s, _, err := runProc(ctx, nil, zstdBin, "-19", "-T2", "-q", "-f", img, "-o", zout)
			if err != nil {
				return err
			}
			st, err := os.Stat(zout)
			if err != nil {
				return err
			}
			res.zstd = append(res.zstd, s)
			res.zstdSize = st.Size()
			logf("zstd -19 -T2 of the image       %7.2f s  %6.1f MiB  %d B", s.wall.Seconds(), float64(s.maxRSS)/(1<<20), st.Size())
			return nil
		})
	}
	for r := 0; r < c.rounds; r++ {
		for i := range runs {
			if err := runs[(r+i)%len(runs)](); err != nil {
				return nil, err
			}
		}
	}
	res.sameImage = sameImage(ctx, bout, img)
	os.Remove(bout)
	os.Remove(zout)
	return res, nil
}

// sameImage compares the bundle manifest's rootfs_sha256 with the image's.
func sameImage(ctx context.Context, bundlePath, img string) string {
	bf, err := os.Open(bundlePath)
	if err != nil {
		return "unknown: " + err.Error()
	}
	defer bf.Close()
	m, err := bundle.ReadManifest(bf)
	if err != nil {
		return "unknown: " + err.Error()
	}
	f, err := os.Open(img)
	if err != nil {
		return "unknown: " + err.Error()
	}
	defer f.Close()
	sum, _, err := bundle.HashImage(ctx, f)
	if err != nil {
		return "unknown: " + err.Error()
	}
	if sum == m.RootfsSHA256 {
		return "yes: the bundle's rootfs.ext4 is byte-identical to the image zstd compressed"
	}
	return "no: the bundle's rootfs.ext4 differs from `ext4pack image`'s (" + m.RootfsSHA256[:12] + " vs " + sum[:12] + ")"
}

// compressRow is one encoder setting of the bundle writer.
type compressRow struct {
	level     zstd.EncoderLevel
	window    int
	frame     int64
	isDefault bool
	wall, cpu time.Duration
	size      int64
	data      int64
}

// runCompress writes a bundle of the image with each setting of
// bundle/bench_test.go's table, in this process, one round each, to
// io.Discard: the writer's own time, without building the image.
func runCompress(ctx context.Context, img string) ([]compressRow, error) {
	rows := []compressRow{
		{level: zstd.SpeedBestCompression, window: bundle.DefaultWindowSize, frame: bundle.DefaultFrameSize, isDefault: true},
		{level: zstd.SpeedBestCompression, window: 128 << 20, frame: 256 << 20}, // the default before the memory budget
		{level: zstd.SpeedBestCompression, window: 64 << 20, frame: 64 << 20},
		{level: zstd.SpeedBestCompression, window: 32 << 20, frame: 32 << 20},
		{level: zstd.SpeedBetterCompression, window: bundle.DefaultWindowSize, frame: bundle.DefaultFrameSize},
		{level: zstd.SpeedDefault, window: bundle.DefaultWindowSize, frame: bundle.DefaultFrameSize},
		{level: zstd.SpeedFastest, window: bundle.DefaultWindowSize, frame: bundle.DefaultFrameSize},
	}
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := bundle.Manifest{Name: "bench", Distro: "debian", Arch: bundle.ArchX86_64, CreatedBy: "ext4pack bench"}
	for i := range rows {
		r := &rows[i]
		cpu0 := selfCPU()
		t0 := time.Now()
		res, err := bundle.Write(ctx, io.Discard, f, m, bundle.WithLevel(r.level), bundle.WithWindowSize(r.window), bundle.WithFrameSize(r.frame))
		if err != nil {
			return nil, fmt.Errorf("bundle.Write %s: %w", r.level, err)
		}
		r.wall, r.cpu = time.Since(t0), selfCPU()-cpu0
		r.size, r.data = res.Size, res.DataBytes
		logf("bundle.Write %-22s window %3dM frame %3dM  %6.2f s  %d B", r.level, r.window>>20, r.frame>>20, r.wall.Seconds(), r.size)
	}
	return rows, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
