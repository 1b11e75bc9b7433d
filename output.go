package ext4pack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ext4pack/ext4pack/bundle"
)

// Manifest returns the bundle manifest of a bundle's image, its rootfs
// fields left for WriteBundle to fill.
func (b *Built) Manifest() (bundle.Manifest, error) {
	if b.bundle == nil {
		return bundle.Manifest{}, errors.New("ext4pack: the image was not built for a bundle (Options.Bundle)")
	}
	m := bundle.Manifest{Name: b.bundle.Name, Distro: b.Distro, Arch: b.Arch, KernelRef: b.bundle.KernelRef,
		Description: b.bundle.Description, GuestInit: b.GuestInit, RootfsGrows: b.RootfsGrows, CreatedBy: "ext4pack " + Version}
	if b.Image != nil {
		m.Source = &bundle.Source{Image: b.Image.Ref, Digest: b.Image.Digest}
	}
	return m, nil
}

// WriteBundle writes the bundle of img, an image Build made with
// Options.Bundle, to w: manifest.json, then rootfs.ext4 as a sparse
// member, compressed with zstd. progress may be nil.
func WriteBundle(ctx context.Context, img *os.File, b *Built, w io.Writer, progress func(Progress)) (bundle.Result, error) {
	m, err := b.Manifest()
	if err != nil {
		return bundle.Result{}, err
	}
	opts, err := b.bundle.level()
	if err != nil {
		return bundle.Result{}, err
	}
	opts = append(opts, bundle.WithModTime(b.Time))
	compressing := "compressing"
	opts = append(opts, bundle.WithWorkersReport(func(n int, why string) {
		compressing = fmt.Sprintf("compressing on %d workers", n)
		if n == 1 {
			compressing = "compressing on 1 worker"
		}
		if b.bundle.Info != nil {
			b.bundle.Info(why)
		}
	}))
	if progress != nil {
		opts = append(opts, bundle.WithProgress(func(done, total int64) {
			// done counts both passes over the image: hashing, then
			// compressing.
			stage := compressing
			if done < total/2 {
				stage = "hashing"
			}
			progress(Progress{Stage: stage, Done: done, Total: total})
		}))
	}
	return bundle.Write(ctx, w, img, m, opts...)
}

// BuildImage builds the image of src at out. It writes a temporary file
// beside out and renames it into place on success: on failure, or when
// ctx is cancelled, it removes the temporary file before it returns, and
// nothing is left. A full disk or quota is an error that names out and
// wraps syscall.ENOSPC or EDQUOT.
func BuildImage(ctx context.Context, src Source, out string, o Options) (*Built, error) {
	o, err := prepare(src, o)
	if err != nil {
		return nil, err
	}
	f, err := tempBeside(out)
	if err != nil {
		return nil, err
	}
	b, err := build(ctx, src, f, o)
	if err != nil {
		removeTemp(f)
		return nil, describeWrite(err, out)
	}
	return b, commitTemp(ctx, f, out)
}

// BundleResult describes a bundle MakeBundle wrote.
type BundleResult struct {
	Path string // absolute
	bundle.Result
	Built *Built
}

// MakeBundle builds the bundle of src at out; an empty out is
// NAME-ARCH.tar.zst in the current directory. o.Bundle is required, and
// checked (BundleOptions.Check) before any file is made or src is
// opened. The image is a temporary file beside the bundle, and the bundle
// is written to another and renamed into place: on failure, or when ctx
// is cancelled, MakeBundle removes both before it returns, and nothing is
// left. o.ImageBuilt, when set, hears of the image before it is packed.
func MakeBundle(ctx context.Context, src Source, out string, o Options) (*BundleResult, error) {
	if o.Bundle == nil {
		return nil, errors.New("ext4pack: MakeBundle needs Options.Bundle")
	}
	o, err := prepare(src, o)
	if err != nil {
		return nil, err
	}
	dir := "."
	if out != "" {
		dir = filepath.Dir(out)
	}
	// The image is an intermediate: a hidden temporary file beside the
	// bundle, on the same filesystem, removed whatever happens.
	img, err := tempBeside(filepath.Join(dir, o.Bundle.Name+".rootfs.ext4"))
	if err != nil {
		return nil, err
	}
	defer removeTemp(img)
	b, err := build(ctx, src, img, o)
	if err != nil {
		return nil, describeWrite(err, img.Name())
	}
	if o.ImageBuilt != nil {
		o.ImageBuilt(b)
	}
	if out == "" {
		out = o.Bundle.Name + "-" + b.Arch + ".tar.zst"
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, err
	}
	f, err := tempBeside(abs)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	res, err := WriteBundle(ctx, img, b, bw, o.Progress)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		removeTemp(f)
		return nil, describeWrite(err, abs)
	}
	if err := commitTemp(ctx, f, abs); err != nil {
		return nil, err
	}
	return &BundleResult{Path: abs, Result: res, Built: b}, nil
}

// describeWrite says, for a full disk or quota, which output did not fit
// and that nothing was left behind.
func describeWrite(err error, out string) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("writing %s: no space left on device; nothing was left behind (%w)", out, err)
	case errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("writing %s: disk quota exceeded; nothing was left behind (%w)", out, err)
	}
	return err
}

// tempBeside creates a temporary file in final's directory, so that the
// rename into place is atomic. A missing directory, or a final that is a
// directory, is found now rather than after all the work.
func tempBeside(final string) (*os.File, error) {
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("output directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("output directory %s is not a directory", dir)
	}
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		return nil, fmt.Errorf("output %s is a directory", final)
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating the output in %s: %w", dir, err)
	}
	return f, nil
}

// removeTemp closes and removes a temporary file; closed first, since
// Windows does not remove a file that is open.
func removeTemp(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// commitTemp syncs and closes f and renames it to final, unless ctx is
// done: then it removes f and returns ctx's error.
func commitTemp(ctx context.Context, f *os.File, final string) error {
	fail := func(err error) error {
		removeTemp(f)
		return fmt.Errorf("writing %s: %w", final, err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		removeTemp(f)
		return err
	}
	if err := os.Rename(f.Name(), final); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("renaming the output into place as %s: %w", final, err)
	}
	return nil
}
