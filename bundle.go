package ext4pack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ext4pack/ext4pack/agents"
	"github.com/ext4pack/ext4pack/bundle"
	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/tarflat"
)

// BundleOptions say what a bundle holds besides the image.
type BundleOptions struct {
	// Name is the bundle's name: 1-64 characters of [a-z0-9._-],
	// starting with a letter or digit. Required.
	Name string
	// Distro overrides the os-release ID of the rootfs.
	Distro string
	// KernelRef and Description go into the manifest as they are.
	KernelRef, Description string
	// AgentBin replaces the embedded vsock agent: a static Linux
	// executable for the bundle's arch. Nil: the embedded one.
	AgentBin []byte
	// NoAgents leaves the guest files out.
	NoAgents bool
}

func (b *BundleOptions) check() error {
	if err := bundle.ValidateName(b.Name); err != nil {
		return err
	}
	if b.NoAgents && b.AgentBin != nil {
		return errors.New("ext4pack: an agent binary and no agents contradict each other")
	}
	if !b.NoAgents && b.AgentBin == nil && !agents.Embedded {
		return agents.ErrNoAgents
	}
	return nil
}

// Paths of what a bundle's image gets besides the guest files.
const imageConfigPath = "etc/banger/image-config.json"

// finishBundleImage settles a bundle's arch and distro and adds what a
// bundle's image holds besides the input, before the image is closed.
func finishBundleImage(w *ext4w.Writer, o Options, b *Built) error {
	if b.Arch == "" {
		arch, err := pickArch(o.Arch, b.Info)
		if err != nil {
			return err
		}
		b.Arch = arch
	}
	b.Distro = o.Bundle.Distro
	if b.Distro == "" {
		b.Distro = b.Info.Distro
	}
	b.Time = w.NewestMtime()
	if o.Epoch != nil {
		b.Time = o.Epoch.UTC()
	}
	var files []agents.File
	if b.imageConfig != nil {
		// The image's Entrypoint, Cmd, Env, WorkingDir and User, for the
		// guest's init: the config's "config" object, byte for byte.
		files = append(files, agents.File{Path: "/" + imageConfigPath, Type: agents.TypeRegular, Mode: 0o644, Data: b.imageConfig})
	}
	if !o.Bundle.NoAgents {
		if !b.Info.HasSystemd {
			o.warn("the rootfs has no systemd (/lib/systemd/systemd or /usr/lib/systemd/systemd): the guest units will not start")
		}
		gf, err := agents.Files(agents.Options{Arch: b.Arch, Distro: b.Distro, AgentBin: o.Bundle.AgentBin})
		if err != nil {
			return err
		}
		files = append(files, gf...)
		b.GuestInit = "systemd"
	}
	return injectFiles(w, files, b.Time, o.warn)
}

// injectFiles writes files through w before it closes, replacing what the
// input had at their paths, with a warning for each.
func injectFiles(w *ext4w.Writer, files []agents.File, t time.Time, warn func(string)) error {
	for _, f := range files {
		name := strings.TrimPrefix(f.Path, "/")
		if w.Exists(name) {
			warn(fmt.Sprintf("the input's /%s is replaced by ext4pack's guest file", name))
		}
		ef := &ext4w.File{Mode: f.Mode, Uid: f.Uid, Gid: f.Gid, Mtime: t}
		switch f.Type {
		case agents.TypeRegular:
			ef.Type, ef.Size = ext4w.TypeRegular, int64(len(f.Data))
		case agents.TypeSymlink:
			ef.Type, ef.Linkname = ext4w.TypeSymlink, f.Target
		case agents.TypeDir:
			ef.Type = ext4w.TypeDir
		default:
			return fmt.Errorf("guest file %s: unknown type %v", f.Path, f.Type)
		}
		if err := w.Create(name, ef); err != nil {
			return fmt.Errorf("adding guest file %s: %w", f.Path, err)
		}
		if len(f.Data) > 0 {
			if _, err := w.Write(f.Data); err != nil {
				return fmt.Errorf("adding guest file %s: %w", f.Path, err)
			}
		}
	}
	return nil
}

// NormalizeArch maps the spellings of an arch that ext4pack accepts
// (x86_64, amd64, aarch64, arm64) to the manifest's (x86_64, aarch64).
func NormalizeArch(s string) (string, bool) {
	switch s {
	case "x86_64", "amd64":
		return bundle.ArchX86_64, true
	case "aarch64", "arm64":
		return bundle.ArchAarch64, true
	}
	return "", false
}

// pickArch settles a bundle's arch from the wanted one, the tar's own
// executables and the host, in that order; a wanted arch that contradicts
// the tar is an error, since an arm64 laptop often builds x86_64 images.
func pickArch(want string, info tarflat.Info) (string, error) {
	fromTar, ok := NormalizeArch(info.Arch)
	switch {
	case info.Arch != "" && !ok:
		return "", fmt.Errorf("the tar's executables are %s (%s); a bundle is x86_64 or aarch64", info.Arch, info.ArchFrom)
	case want != "" && info.Arch != "" && want != fromTar:
		return "", fmt.Errorf("--arch %s contradicts the tar: %s is %s", want, info.ArchFrom, fromTar)
	case want != "":
		return want, nil
	case info.Arch != "":
		return fromTar, nil
	}
	if a, ok := NormalizeArch(runtime.GOARCH); ok {
		return a, nil
	}
	return "", fmt.Errorf("the tar has no executables to take the arch from and the host is %s: pass --arch", runtime.GOARCH)
}

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
	opts := []bundle.Option{bundle.WithModTime(b.Time)}
	if progress != nil {
		opts = append(opts, bundle.WithProgress(func(done, total int64) {
			// done counts both passes over the image: hashing, then
			// compressing.
			stage := "compressing"
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
