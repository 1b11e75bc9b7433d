package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ext4pack/ext4pack/agents"
	"github.com/ext4pack/ext4pack/bundle"
	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/tarflat"
)

func makeBundleCommand() *cli.Command {
	return &cli.Command{
		Name:  "make-bundle",
		Usage: "write a microVM image bundle (.tar.zst of manifest.json and rootfs.ext4) from a rootfs tar",
		UsageText: "ext4pack make-bundle --rootfs-tar FILE|- --name NAME [--distro D] [--arch A] [--kernel-ref K]\n" +
			"     [--description TEXT] [--size SIZE] [--inodes N] [--label L] [--uuid U] [--out PATH]\n" +
			"     [--agent-bin PATH] [--init-bin PATH] [--no-agents] [--json]",
		Description: `Prints three lines on stdout (path, sha256, size), or with --json a catalog entry.
Example:
   docker export $(docker create debian:bookworm) | ext4pack make-bundle --rootfs-tar - --name debian-12`,
		Flags: append(imageFlags(),
			&cli.StringFlag{Name: "name", Usage: "bundle name: 1-64 of [a-z0-9._-], starting with a letter or digit"},
			&cli.StringFlag{Name: "distro", Usage: "distro for the manifest (default: ID= of the tar's os-release)"},
			&cli.StringFlag{Name: "arch", Usage: "x86_64/amd64 or aarch64/arm64 (default: the tar's own executables, else the host's)"},
			&cli.StringFlag{Name: "kernel-ref", Usage: "kernel reference for the manifest"},
			&cli.StringFlag{Name: "description", Usage: "description for the manifest"},
			&cli.StringFlag{Name: "out", Usage: "bundle path (default: ./NAME-ARCH.tar.zst)"},
			&cli.StringFlag{Name: "agent-bin", Usage: "use this static Linux binary as the vsock agent instead of the built-in one"},
			&cli.StringFlag{Name: "init-bin", Usage: "use this static Linux binary as ext4pack-init instead of the built-in one"},
			&cli.BoolFlag{Name: "no-agents", Usage: "add no guest files"},
			&cli.BoolFlag{Name: "json", Usage: "print a catalog entry as JSON instead of three lines"},
		),
		Action: makeBundle,
	}
}

// bundleArgs are make-bundle's checked flags.
type bundleArgs struct {
	name, distro, arch, kernelRef, description, out string
	agentBin, initBin                               []byte
	noAgents, json                                  bool
}

func parseBundleArgs(c *cli.Context) (bundleArgs, error) {
	a := bundleArgs{
		name: c.String("name"), distro: c.String("distro"), kernelRef: c.String("kernel-ref"),
		description: c.String("description"), out: c.String("out"),
		noAgents: c.Bool("no-agents"), json: c.Bool("json"),
	}
	if c.NArg() > 0 {
		return a, usagef("make-bundle takes no arguments, got %q", c.Args().Slice())
	}
	if a.name == "" {
		return a, usagef("make-bundle needs --name NAME")
	}
	if err := bundle.ValidateName(a.name); err != nil {
		return a, usagef("--name %q: 1-64 characters of [a-z0-9._-], starting with a letter or digit", a.name)
	}
	if s := c.String("arch"); s != "" {
		arch, ok := normalizeArch(s)
		if !ok {
			return a, usagef("--arch %q: use x86_64 (or amd64) or aarch64 (or arm64)", s)
		}
		a.arch = arch
	}
	if c.IsSet("agent-bin") {
		if a.noAgents {
			return a, usagef("--agent-bin and --no-agents contradict each other")
		}
		b, err := os.ReadFile(c.String("agent-bin"))
		if err != nil {
			return a, fmt.Errorf("--agent-bin: %w", err)
		}
		a.agentBin = b
	}
	if c.IsSet("init-bin") {
		if a.noAgents {
			return a, usagef("--init-bin and --no-agents contradict each other")
		}
		b, err := os.ReadFile(c.String("init-bin"))
		if err != nil {
			return a, fmt.Errorf("--init-bin: %w", err)
		}
		a.initBin = b
	}
	if !a.noAgents && a.agentBin == nil && !agents.Embedded {
		return a, agents.ErrNoAgents
	}
	if a.out != "" {
		if st, err := os.Stat(a.out); err == nil && st.IsDir() {
			return a, usagef("--out %s is a directory; give the bundle's file name", a.out)
		}
	}
	return a, nil
}

// normalizeArch maps SPEC's --arch spellings to the manifest's.
func normalizeArch(s string) (string, bool) {
	switch s {
	case "x86_64", "amd64":
		return bundle.ArchX86_64, true
	case "aarch64", "arm64":
		return bundle.ArchAarch64, true
	}
	return "", false
}

// hostArch is the default when neither --arch nor the tar says.
func hostArch() (string, error) {
	if a, ok := normalizeArch(runtime.GOARCH); ok {
		return a, nil
	}
	return "", fmt.Errorf("the tar has no executables to take the arch from and the host is %s: pass --arch", runtime.GOARCH)
}

// pickArch settles the bundle's arch from the flag, the tar's own
// executables and the host, in that order; a flag that contradicts the
// tar is an error, since an arm64 laptop often builds x86_64 images.
func pickArch(flag string, info tarflat.Info) (string, error) {
	fromTar, ok := normalizeArch(info.Arch)
	switch {
	case info.Arch != "" && !ok:
		return "", fmt.Errorf("the tar's executables are %s (%s); a bundle is x86_64 or aarch64", info.Arch, info.ArchFrom)
	case flag != "" && info.Arch != "" && flag != fromTar:
		return "", fmt.Errorf("--arch %s contradicts the tar: %s is %s", flag, info.ArchFrom, fromTar)
	case flag != "":
		return flag, nil
	case info.Arch != "":
		return fromTar, nil
	}
	return hostArch()
}

// defaultTime is the time of entries ext4pack makes itself and of the
// bundle's members: SOURCE_DATE_EPOCH, else the tar's newest mtime.
func defaultTime(w *ext4w.Writer) time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var n int64
		if _, err := fmt.Sscan(s, &n); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return w.NewestMtime()
}

// injectGuestFiles writes the guest files through w before it closes,
// replacing what the tar had at their paths, with a warning for each.
func injectGuestFiles(c *cli.Context, w *ext4w.Writer, files []agents.File, t time.Time) error {
	for _, f := range files {
		name := strings.TrimPrefix(f.Path, "/")
		// Where the guest will look: /sbin/init in a usr-merged image is
		// usr/sbin/init, since sbin is a symlink.
		if p, st, err := w.Resolve(path.Dir(name)); err == nil && st.Type == ext4w.TypeDir {
			name = path.Join(p, path.Base(name))
		}
		if w.Exists(name) {
			fmt.Fprintf(c.App.ErrWriter, "ext4pack: warning: the tar's /%s is replaced by ext4pack's guest file\n", name)
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

func makeBundle(c *cli.Context) error {
	a, err := parseBundleArgs(c)
	if err != nil {
		return err
	}
	opts, err := writerOptions(c)
	if err != nil {
		return err
	}
	dir := "."
	if a.out != "" {
		dir = filepath.Dir(a.out)
	}
	// The image is an intermediate: a hidden temporary file beside the
	// bundle, on the same filesystem, removed whatever happens.
	img, err := createTemp(filepath.Join(dir, a.name+".rootfs.ext4"))
	if err != nil {
		return err
	}
	defer discard(img)
	p := newProgress(c)
	defer p.done()
	var arch, distro, guestInit string
	var mtime time.Time
	_, err = writeImage(c, img, p, opts, func(w *ext4w.Writer, info tarflat.Info) error {
		if arch, err = pickArch(a.arch, info); err != nil {
			return err
		}
		distro = a.distro
		if distro == "" {
			distro = info.Distro
		}
		mtime = defaultTime(w)
		if a.noAgents {
			return nil
		}
		g, err := agents.ForImage(info, agents.Options{Arch: arch, Distro: distro, AgentBin: a.agentBin, InitBin: a.initBin})
		if err != nil {
			return err
		}
		fmt.Fprintln(c.App.ErrWriter, g.Message)
		guestInit = g.Init
		return injectGuestFiles(c, w, g.Files, mtime)
	})
	if err != nil {
		return describe(c, err, img.Name())
	}
	out := a.out
	if out == "" {
		out = a.name + "-" + arch + ".tar.zst"
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	f, err := createTemp(abs)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	m := bundle.Manifest{Name: a.name, Distro: distro, Arch: arch, KernelRef: a.kernelRef,
		Description: a.description, GuestInit: guestInit, CreatedBy: "ext4pack " + version}
	res, err := bundle.Write(context.Background(), bw, img, m,
		bundle.WithModTime(mtime),
		bundle.WithProgress(func(done, total int64) {
			// done counts both passes over the image: hashing, then
			// compressing.
			p.show("bundling %s: %d%%", filepath.Base(abs), 100*done/max(total, 1))
		}))
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		discard(f)
		return describe(c, err, abs)
	}
	if err := commit(f, abs); err != nil {
		return err
	}
	p.done()
	if a.json {
		entry := struct {
			Name          string `json:"name"`
			Distro        string `json:"distro"`
			Arch          string `json:"arch"`
			KernelRef     string `json:"kernel_ref"`
			Description   string `json:"description"`
			TarballURL    string `json:"tarball_url"`
			TarballSHA256 string `json:"tarball_sha256"`
			SizeBytes     int64  `json:"size_bytes"`
		}{a.name, distro, arch, a.kernelRef, a.description, "", res.SHA256, res.Size}
		enc := json.NewEncoder(c.App.Writer)
		return enc.Encode(entry)
	}
	fmt.Fprintf(c.App.Writer, "path: %s\nsha256: %s\nsize: %d\n", abs, res.SHA256, res.Size)
	return nil
}
