package boottest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The base rootfs: Debian's smallest install that boots with systemd, and
// iproute2 for the network bootstrap.
const (
	suite = "bookworm"
	// baseTarName is the cached base tar. It names the recipe: change it
	// with debootstrapArgs, so that a cache made by another recipe is not
	// taken for this one.
	baseTarName = "rootfs-bookworm-minbase-systemd-sysv-iproute2.tar"
)

var debootstrapArgs = []string{"--variant=minbase", "--include=systemd-sysv,iproute2", suite}

// errNeedRoot says that the base rootfs cannot be built as this user.
var errNeedRoot = errors.New("debootstrap needs root (or set " + envRootfsTar + " to a rootfs tar)")

// baseRootfsTar returns the base rootfs tar: the one the configuration
// names, else the cached one, else one built now with debootstrap in
// scratch and cached. built says whether it was built now.
func baseRootfsTar(ctx context.Context, c config, scratch string, logf func(string, ...any)) (tarPath string, built bool, err error) {
	if c.rootfsTar != "" {
		if _, err := os.Stat(c.rootfsTar); err != nil {
			return "", false, fmt.Errorf("%s: %w", envRootfsTar, err)
		}
		return c.rootfsTar, false, nil
	}
	cached := filepath.Join(c.cacheDir, baseTarName)
	if _, err := os.Stat(cached); err == nil {
		return cached, false, nil
	}
	if os.Geteuid() != 0 {
		return "", false, errNeedRoot
	}
	files, err := readAptSources("/etc/apt")
	if err != nil {
		return "", false, err
	}
	mirror, err := debianMirror(files, suite)
	if err != nil {
		return "", false, err
	}

	target := filepath.Join(scratch, "debootstrap")
	logf("debootstrap %v from %s (%v at most)", debootstrapArgs, mirror, debootstrapTimeout)
	args := append(append([]string{}, debootstrapArgs...), target, mirror)
	if _, err := runTool(ctx, debootstrapTimeout, runOpts{privateMounts: true}, "debootstrap", args...); err != nil {
		// debootstrap's own log says which package failed, and it keeps
		// the log only when it fails.
		if b, lerr := os.ReadFile(filepath.Join(target, "debootstrap", "debootstrap.log")); lerr == nil {
			err = fmt.Errorf("%w\ndebootstrap.log:\n%s", err, tail(b, maxErrOutput))
		}
		return "", false, err
	}

	// Write the tar beside its final name and rename it, so that a cut run
	// never leaves a cached tar that looks whole. Downloaded packages and
	// apt's lists are left out, as an image build would clean them.
	tmp, err := os.CreateTemp(c.cacheDir, ".rootfs-*.tar")
	if err != nil {
		return "", false, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if _, err := runTool(ctx, toolTimeout, runOpts{}, "tar",
		"--numeric-owner", "--xattrs", "--sort=name",
		"--exclude=./var/cache/apt/archives/*.deb", "--exclude=./var/lib/apt/lists/*_*",
		"-C", target, "-cf", tmp.Name(), "."); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp.Name(), cached); err != nil {
		return "", false, err
	}
	return cached, true, nil
}

// DebianRootfsTar returns the boot test's Debian rootfs tar for other
// harnesses (make bench): the cached one, else one built now with
// debootstrap (as root) and cached, in $EXT4PACK_CACHE. source says which.
func DebianRootfsTar(ctx context.Context, logf func(string, ...any)) (path, source string, err error) {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil {
		return "", "", err
	}
	if d := os.Getenv(envCache); d != "" {
		if c.cacheDir, err = filepath.Abs(d); err != nil {
			return "", "", err
		}
	}
	if err := os.MkdirAll(c.cacheDir, 0o755); err != nil {
		return "", "", err
	}
	scratch, err := os.MkdirTemp("", "ext4pack-rootfs-*")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(scratch)
	path, built, err := baseRootfsTar(ctx, c, scratch, logf)
	source = "the boot test's cache"
	if built {
		source = "built now with debootstrap, cached"
	}
	return path, source, err
}
