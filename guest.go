package ext4pack

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

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
	// InitBin replaces the embedded ext4pack-init, which a rootfs without
	// init of its own gets as /sbin/init. Nil: the embedded one.
	InitBin []byte
	// NoAgents leaves the guest files out.
	NoAgents bool
	// NoGrow leaves out the growth of / to the guest's disk at boot (SPEC
	// "Growing to the disk"): by default every guest grows its root to
	// its whole block device, which needs ext4pack-init (embedded, or
	// InitBin) in every guest.
	NoGrow bool
	// Compression is the zstd level, one of bundle.Levels: "fastest",
	// "default", "better" or "best". Empty: "best".
	Compression string
	// Info receives lines that say how the work is split, one each
	// without a newline: how many workers compress and why (the CPUs,
	// the frames, the memory budget). Nil: dropped.
	Info func(msg string)
}

// Check reports what is wrong with b before anything is built: a bad
// name, agents both given and refused, no embedded agents, an unknown
// compression level, or a memory budget (a cgroup limit, GOMEMLIMIT) too
// small for compressing.
func (b *BundleOptions) Check() error {
	if err := bundle.ValidateName(b.Name); err != nil {
		return err
	}
	if b.NoAgents && b.AgentBin != nil {
		return errors.New("ext4pack: an agent binary and no agents contradict each other")
	}
	if !b.NoAgents && b.AgentBin == nil && !agents.Embedded {
		return agents.ErrNoAgents
	}
	// Fail before the image is built when compressing would not fit the
	// memory budget (a cgroup limit or GOMEMLIMIT below what one worker
	// needs).
	level, err := b.level()
	if err != nil {
		return err
	}
	if plan, err := bundle.PlanMemory(level...); err != nil {
		if least, _ := bundle.PlanMemory(bundle.WithLevel(zstd.SpeedFastest)); errors.Is(err, bundle.ErrMemoryBudget) && least.Needs < plan.Needs {
			err = fmt.Errorf("%w; raise it, or use --compression fastest, which needs %d MiB", err, (least.Needs+1<<20-1)>>20)
		}
		return err
	}
	return nil
}

// level is the bundle writer's option for Compression.
func (b *BundleOptions) level() ([]bundle.Option, error) {
	if b.Compression == "" {
		return nil, nil
	}
	l, err := bundle.ParseLevel(b.Compression)
	if err != nil {
		return nil, err
	}
	return []bundle.Option{bundle.WithLevel(l)}, nil
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
		// The files for the init the rootfs boots (SPEC "Guest init
		// systems"), ext4pack-init where it has none.
		g, err := agents.ForImage(guestImage(b.Info), agents.Options{Arch: b.Arch, Distro: b.Distro,
			AgentBin: o.Bundle.AgentBin, InitBin: o.Bundle.InitBin, NoGrow: o.Bundle.NoGrow})
		if err != nil {
			return err
		}
		files = append(files, g.Files...)
		b.GuestInit, b.GuestMessage, b.RootfsGrows = g.Init, g.Message, g.Grows
	}
	return injectFiles(w, files, b.Time, o.warn)
}

// guestImage is what the guest files depend on, from what tarflat learnt
// as the entries streamed by. The init names and flavours are the same
// words in both packages (TestGuestImage).
func guestImage(info tarflat.Info) agents.Image {
	in := info.Init
	return agents.Image{
		Init: agents.InitSystem{Name: in.Name, Path: in.Path, Inittab: in.Inittab, HasInittab: in.HasInittab,
			Flavor: in.Flavor, Why: in.Why},
		Distro:     info.Distro,
		HasNetTool: info.NetTool != "",
	}
}

// injectFiles writes files through w before it closes, replacing what the
// input had at their paths, with a warning for each, except where a file is
// IfMissing: what the input has there stays.
func injectFiles(w *ext4w.Writer, files []agents.File, t time.Time, warn func(string)) error {
	for _, f := range files {
		name := strings.TrimPrefix(f.Path, "/")
		// Where the guest will look: /sbin/init in a usr-merged image is
		// usr/sbin/init, since sbin is a symlink.
		if p, st, err := w.Resolve(path.Dir(name)); err == nil && st.Type == ext4w.TypeDir {
			name = path.Join(p, path.Base(name))
		}
		if w.Exists(name) {
			if f.IfMissing {
				continue
			}
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
		case agents.TypeCharDevice:
			ef.Type, ef.Devmajor, ef.Devminor = ext4w.TypeCharDev, f.Major, f.Minor
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
