package ext4pack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ext4pack/ext4pack/bundle"
)

// Manifest returns the bundle manifest of a bundle's image, its rootfs
// fields left for WriteBundle to fill.
func (b *Built) Manifest() (bundle.Manifest, error) {
	if b.bundle == nil {
		return bundle.Manifest{}, errors.New("ext4pack: the image was not built for a bundle (Options.Bundle)")
	}
	m := bundle.Manifest{Name: b.bundle.Name, Distro: b.Distro, Arch: b.Arch, KernelRef: b.bundle.KernelRef,
		Description: b.bundle.Description, GuestInit: b.GuestInit, CreatedBy: "ext4pack " + Version}
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
// ctx is cancelled, nothing is left.
func BuildImage(ctx context.Context, src Source, out string, o Options) (*Built, error) {
	f, err := tempBeside(out)
	if err != nil {
		return nil, err
	}
	b, err := Build(ctx, src, f, o)
	if err != nil {
		removeTemp(f)
		return nil, err
	}
	return b, commitTemp(f, out)
}

// BundleResult describes a bundle MakeBundle wrote.
type BundleResult struct {
	Path string // absolute
	bundle.Result
	Built *Built
}

// MakeBundle builds the bundle of src at out; an empty out is
// NAME-ARCH.tar.zst in the current directory. o.Bundle is required. As
// with BuildImage, nothing is left behind on failure.
func MakeBundle(ctx context.Context, src Source, out string, o Options) (*BundleResult, error) {
	if o.Bundle == nil {
		return nil, errors.New("ext4pack: MakeBundle needs Options.Bundle")
	}
	dir := "."
	if out != "" {
		dir = filepath.Dir(out)
	}
	img, err := tempBeside(filepath.Join(dir, o.Bundle.Name+".rootfs.ext4"))
	if err != nil {
		return nil, err
	}
	defer removeTemp(img)
	b, err := Build(ctx, src, img, o)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	if err := commitTemp(f, abs); err != nil {
		return nil, err
	}
	return &BundleResult{Path: abs, Result: res, Built: b}, nil
}

// tempBeside creates a temporary file in final's directory, so that the
// rename into place is atomic.
func tempBeside(final string) (*os.File, error) {
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating the output in %s: %w", dir, err)
	}
	return f, nil
}

func removeTemp(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// commitTemp syncs and closes f and renames it to final.
func commitTemp(f *os.File, final string) error {
	err := f.Sync()
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(f.Name(), final)
	}
	if err != nil {
		removeTemp(f)
		return fmt.Errorf("writing %s: %w", final, err)
	}
	return nil
}
