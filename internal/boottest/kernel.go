package boottest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// kernelMeta is Debian's package that depends on the current cloud kernel,
// by guest arch. The cloud flavour has NVMe and ext4 built in, so it mounts
// the image as root; virtio_net and vsock are modules, which the test's
// initramfs loads (see rdinit).
var kernelMeta = map[string]string{
	"x86_64":  "linux-image-cloud-amd64",
	"aarch64": "linux-image-cloud-arm64:arm64",
}

// debArch is Debian's name of a guest arch.
var debArch = map[string]string{"x86_64": "amd64", "aarch64": "arm64"}

// kernel is an unpacked Debian kernel package.
type kernel struct {
	version string // e.g. 6.1.0-56-cloud-amd64
	vmlinuz string // the kernel qemu boots
	modules string // lib/modules/VERSION, with depmod's indexes
	deb     string // the package it came from
}

// fetchKernel returns the cloud kernel, downloading its package with
// apt-get and unpacking it into cacheDir the first time. Later runs use the
// cached copy without asking apt, so they work offline; delete the cache to
// move to a newer kernel.
func fetchKernel(ctx context.Context, cacheDir, arch string, logf func(string, ...any)) (kernel, error) {
	deb, err := kernelDeb(ctx, cacheDir, arch, logf)
	if err != nil {
		return kernel{}, err
	}
	dir := strings.TrimSuffix(deb, ".deb")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := unpackKernel(ctx, cacheDir, deb, dir); err != nil {
			return kernel{}, err
		}
	} else if err != nil {
		return kernel{}, err
	}
	return findKernel(dir, deb)
}

// kernelDeb returns the cached kernel package, downloading it if there is
// none.
func kernelDeb(ctx context.Context, cacheDir, arch string, logf func(string, ...any)) (string, error) {
	out, depErr := runTool(ctx, toolTimeout, runOpts{}, "apt-cache", "depends", kernelMeta[arch])
	var pkg string
	if depErr == nil {
		pkg, depErr = parseAptDepends(string(out), "linux-image-")
	}
	if depErr != nil {
		// apt's lists may be missing or stale on a machine that has the
		// package cached already: any cached cloud kernel will do.
		cached, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*-cloud-"+debArch[arch]+"_*.deb"))
		if len(cached) == 0 {
			return "", fmt.Errorf("finding the kernel package (run apt-get update first%s?): %w",
				map[bool]string{true: ", after dpkg --add-architecture arm64", false: ""}[arch == "aarch64"], depErr)
		}
		slices.Sort(cached)
		return cached[len(cached)-1], nil
	}
	return fetchDeb(ctx, cacheDir, pkg, logf)
}

// fetchDeb returns the cached .deb of pkg ("name" or "name:arch"),
// downloading it with apt-get the first time.
func fetchDeb(ctx context.Context, cacheDir, pkg string, logf func(string, ...any)) (string, error) {
	name, arch, _ := strings.Cut(pkg, ":")
	pattern := name + "_*.deb"
	if arch != "" {
		pattern = name + "_*_" + arch + ".deb"
	}
	if cached, _ := filepath.Glob(filepath.Join(cacheDir, pattern)); len(cached) > 0 {
		slices.Sort(cached)
		return cached[len(cached)-1], nil
	}

	// Download into a scratch directory, then rename: a download cut short
	// never looks like a cached package.
	logf("downloading %s with apt-get into %s", pkg, cacheDir)
	tmp, err := os.MkdirTemp(cacheDir, ".download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if _, err := runTool(ctx, downloadTimeout, runOpts{dir: tmp}, "apt-get", "download", pkg); err != nil {
		return "", err
	}
	got, _ := filepath.Glob(filepath.Join(tmp, pattern))
	if len(got) != 1 {
		return "", fmt.Errorf("apt-get download %s left %d .deb files in %s", pkg, len(got), tmp)
	}
	deb := filepath.Join(cacheDir, filepath.Base(got[0]))
	if err := os.Rename(got[0], deb); err != nil {
		return "", err
	}
	return deb, nil
}

// unpackKernel unpacks deb into dir and builds the module indexes there, as
// the package's postinst would have. Without modules.dep the guest's
// systemd-modules-load cannot find virtio_net by name.
func unpackKernel(ctx context.Context, cacheDir, deb, dir string) error {
	tmp, err := os.MkdirTemp(cacheDir, ".unpack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if _, err := runTool(ctx, toolTimeout, runOpts{}, "dpkg-deb", "-x", deb, tmp); err != nil {
		return err
	}
	k, err := findKernel(tmp, deb)
	if err != nil {
		return err
	}
	if _, err := runTool(ctx, toolTimeout, runOpts{}, "depmod", "-b", tmp, k.version); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another run may have unpacked the same package meanwhile.
		if _, statErr := os.Stat(dir); statErr == nil {
			return nil
		}
		return err
	}
	return nil
}

// findKernel finds the one kernel and its modules in an unpacked package.
func findKernel(dir, deb string) (kernel, error) {
	found, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(found) != 1 {
		return kernel{}, fmt.Errorf("%s: want one boot/vmlinuz-*, found %d", dir, len(found))
	}
	version := strings.TrimPrefix(filepath.Base(found[0]), "vmlinuz-")
	modules := filepath.Join(dir, "lib", "modules", version)
	if fi, err := os.Stat(modules); err != nil || !fi.IsDir() {
		return kernel{}, fmt.Errorf("%s: no lib/modules/%s directory", dir, version)
	}
	return kernel{version: version, vmlinuz: found[0], modules: modules, deb: deb}, nil
}
