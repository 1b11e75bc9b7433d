package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ext4pack/ext4pack"
)

func makeBundleCommand(s *session) *cli.Command {
	return &cli.Command{
		Name:  "make-bundle",
		Usage: "write a microVM image bundle (.tar.zst of manifest.json and rootfs.ext4) from a rootfs tar or a container image",
		UsageText: "ext4pack make-bundle (--rootfs-tar FILE|- | --image REF) --name NAME [--platform P] [--distro D] [--arch A]\n" +
			"     [--kernel-ref K] [--description TEXT] [--size SIZE] [--inodes N] [--label L] [--uuid U] [--out PATH]\n" +
			"     [--agent-bin PATH] [--init-bin PATH] [--no-agents] [--no-grow] [--compression LEVEL] [--json] [--verbose]\n" +
			"     [--pull always|missing|never] [--jobs N] [--cache DIR | --no-cache] [--cache-max SIZE]",
		Description: `Prints three lines on stdout (path, sha256, size), or with --json a catalog entry.
Examples:
   docker export $(docker create debian:bookworm) | ext4pack make-bundle --rootfs-tar - --name debian-12
   ext4pack make-bundle --image docker://debian:bookworm --name debian-12`,
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
			&cli.BoolFlag{Name: "no-grow", Usage: "the guest does not grow / to its disk at boot"},
			&cli.StringFlag{Name: "compression", Value: "best", Usage: "zstd level: " + strings.Join(ext4pack.CompressionLevels, ", ") + " (faster to smaller)"},
			&cli.BoolFlag{Name: "json", Usage: "print a catalog entry as JSON instead of three lines"},
			&cli.BoolFlag{Name: "verbose", Usage: "say on stderr how the work is split: the compression workers, and why so many"},
		),
		Action: func(c *cli.Context) error { return makeBundle(c, s) },
	}
}

// bundleArgs are make-bundle's checked flags.
type bundleArgs struct {
	name, distro, arch, kernelRef, description, out string
	agentBin, initBin                               []byte
	noAgents, noGrow, json                          bool
	// compression is the zstd level's name, checked.
	compression string
}

func parseBundleArgs(c *cli.Context) (bundleArgs, error) {
	a := bundleArgs{
		name: c.String("name"), distro: c.String("distro"), kernelRef: c.String("kernel-ref"),
		description: c.String("description"), out: c.String("out"),
		noAgents: c.Bool("no-agents"), noGrow: c.Bool("no-grow"), json: c.Bool("json"),
	}
	if c.NArg() > 0 {
		return a, usagef("make-bundle takes no arguments, got %q", c.Args().Slice())
	}
	if a.name == "" {
		return a, usagef("make-bundle needs --name NAME")
	}
	if err := ext4pack.ValidateName(a.name); err != nil {
		return a, usagef("--name %q: 1-64 characters of [a-z0-9._-], starting with a letter or digit", a.name)
	}
	if s := c.String("arch"); s != "" {
		arch, ok := ext4pack.NormalizeArch(s)
		if !ok {
			return a, usagef("--arch %q: use x86_64 (or amd64) or aarch64 (or arm64)", s)
		}
		a.arch = arch
	}
	a.compression = c.String("compression")
	if !slices.Contains(ext4pack.CompressionLevels, a.compression) {
		return a, usagef("--compression %q: use one of %s", a.compression, strings.Join(ext4pack.CompressionLevels, ", "))
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
	// Said before the input's flags are looked at, where the library's
	// BundleOptions.Check would say it after them.
	if !a.noAgents && a.agentBin == nil && !ext4pack.AgentsEmbedded {
		return a, ext4pack.ErrNoAgents
	}
	if a.out != "" {
		if st, err := os.Stat(a.out); err == nil && st.IsDir() {
			return a, usagef("--out %s is a directory; give the bundle's file name", a.out)
		}
	}
	return a, nil
}

func makeBundle(c *cli.Context, s *session) error {
	a, err := parseBundleArgs(c)
	if err != nil {
		return err
	}
	o, err := buildOptions(c)
	if err != nil {
		return err
	}
	src, err := source(c)
	if err != nil {
		return err
	}
	o.Arch = a.arch
	o.Bundle = &ext4pack.BundleOptions{Name: a.name, Distro: a.distro, KernelRef: a.kernelRef,
		Description: a.description, AgentBin: a.agentBin, InitBin: a.initBin, NoAgents: a.noAgents, NoGrow: a.noGrow,
		Compression: a.compression}
	if c.Bool("verbose") {
		o.Bundle.Info = func(m string) { fmt.Fprintf(c.App.ErrWriter, "ext4pack: %s\n", m) }
	}
	p := newProgress(c)
	defer p.done()
	o.Progress = p.report
	o.ImageBuilt = func(b *ext4pack.Built) {
		if b.Image != nil {
			fmt.Fprintf(c.App.ErrWriter, "ext4pack: image %s (%s, %d layers)\n", b.Image.Ref, b.Image.Platform, b.Image.Layers)
		}
		if b.GuestMessage != "" {
			fmt.Fprintln(c.App.ErrWriter, b.GuestMessage)
		}
	}
	// The library checks the options (a memory budget too small to
	// compress in fails at once), builds the image into a temporary file
	// beside the bundle, and writes the bundle.
	var res *ext4pack.BundleResult
	err = s.do(func() (string, error) {
		r, err := ext4pack.MakeBundle(c.Context, src, a.out, o)
		if err != nil {
			return "", describe(c, err)
		}
		res = r
		return r.Path, nil
	})
	if err != nil {
		return err
	}
	p.done()
	b := res.Built
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
		}{a.name, b.Distro, b.Arch, a.kernelRef, a.description, "", res.SHA256, res.Size}
		enc := json.NewEncoder(c.App.Writer)
		return enc.Encode(entry)
	}
	fmt.Fprintf(c.App.Writer, "path: %s\nsha256: %s\nsize: %d\n", res.Path, res.SHA256, res.Size)
	return nil
}
