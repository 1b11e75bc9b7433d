// Package bundle writes and reads ext4pack bundles (SPEC, "Bundle"): a tar
// archive compressed with zstd that holds manifest.json, then the ext4
// image rootfs.ext4 as a GNU sparse 1.0 member under pax headers, so that
// the image's holes take no space and are never compressed. GNU tar, bsdtar,
// Go's archive/tar and Python's tarfile restore it, holes included, past
// 8 GiB of data too (see newTarStream). A hole is any whole 4 KiB block of
// zeros, however the file system stores it.
//
// Write reads the image twice. The first pass hashes it for the manifest,
// which comes first in the archive, and finds its holes; the second
// compresses only the data. The output is reproducible: the same image,
// manifest and options give the same bytes on any machine and GOMAXPROCS.
package bundle

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

// ErrImageChanged is returned by Write when the image's size or
// modification time changed while it was being bundled.
var ErrImageChanged = errors.New("bundle: image changed while being bundled")

// Result describes a bundle Write produced.
type Result struct {
	// SHA256 is the lowercase hex SHA-256 of the bytes written to dst.
	SHA256 string
	// Size is the number of bytes written to dst.
	Size int64
	// Manifest is manifest.json as written, rootfs fields filled in.
	Manifest Manifest
	// DataBytes is how many bytes of the image the bundle stores; the
	// rest are holes.
	DataBytes int64
	// Workers is how many frames were compressed at once, at most.
	Workers int
}

// Write writes a bundle of image and m to dst. It fills in m's Rootfs,
// RootfsSizeBytes and RootfsSHA256; those the caller sets must agree with
// the image. The other fields must be valid (Manifest.Validate).
//
// Write reads image with ReadAt from offset 0 to its size, and leaves its
// file offset where it was. The image must not change during Write: a
// change of size or modification time is reported as ErrImageChanged.
// dst receives the frames in order; on error, what was written is
// incomplete and should be removed. Write stops early when ctx is done.
//
// Write plans its memory first (PlanMemory) and fails with ErrMemoryBudget,
// before reading the image, when the budget cannot hold one worker.
func Write(ctx context.Context, dst io.Writer, image *os.File, m Manifest, opts ...Option) (Result, error) {
	o, err := newOptions(opts)
	if err != nil {
		return Result{}, err
	}
	// Check what can be checked before spending a pass on the image.
	if err := m.validateCaller(); err != nil {
		return Result{}, err
	}
	plan, err := o.plan()
	if err != nil {
		return Result{}, err
	}
	name := image.Name()
	before, err := statRegular(image)
	if err != nil {
		return Result{}, err
	}
	size := before.Size()

	total := 2 * size
	var pass1 func(int64)
	if o.progress != nil {
		pass1 = func(done int64) { o.progress(done, total) }
	}
	scan, err := scanImage(ctx, image, size, pass1)
	if err != nil {
		return Result{}, err
	}
	m, err = m.complete(size, hex.EncodeToString(scan.sha256[:]))
	if err != nil {
		return Result{}, err
	}
	manifest, err := m.marshal()
	if err != nil {
		return Result{}, err
	}
	stream, err := newTarStream(image, manifest, scan, o.modTime)
	if err != nil {
		return Result{}, err
	}

	var pass2 func(int64)
	if o.progress != nil {
		pass2 = func(end int64) { o.progress(size+stream.imageDone(end, size), total) }
	}
	// The encoders are the bulk of Write's memory. Collecting first lets
	// them reuse what the caller has let go (make-bundle's image writer
	// leaves up to hundreds of MiB of garbage), instead of adding to it.
	runtime.GC()
	workers, why := plan.Explain((stream.size+o.frameSize-1)/o.frameSize, o.frameSize)
	if o.onWorkers != nil {
		o.onWorkers(workers, why)
	}
	sum, written, err := compress(ctx, dst, stream, o, plan, pass2)
	if err != nil {
		return Result{}, err
	}

	after, err := statRegular(image)
	if err != nil {
		return Result{}, err
	}
	if after.Size() != size || !after.ModTime().Equal(before.ModTime()) {
		return Result{}, fmt.Errorf("%w: %s", ErrImageChanged, name)
	}
	return Result{
		SHA256:    hex.EncodeToString(sum[:]),
		Size:      written,
		Manifest:  m,
		DataBytes: scan.dataBytes,
		Workers:   workers,
	}, nil
}

// HashImage returns the lowercase hex SHA-256 of image's content, holes
// read as zeros, and its size: the manifest's rootfs_sha256 and
// rootfs_size_bytes. Holes the file system reports are hashed without being
// read. It reads with ReadAt and leaves the file offset where it was.
func HashImage(ctx context.Context, image *os.File) (sum string, size int64, err error) {
	fi, err := statRegular(image)
	if err != nil {
		return "", 0, err
	}
	scan, err := scanImage(ctx, image, fi.Size(), nil)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(scan.sha256[:]), scan.size, nil
}

func statRegular(f *os.File) (os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("bundle: %s: image is not a regular file (mode %s)", f.Name(), fi.Mode())
	}
	return fi, nil
}
