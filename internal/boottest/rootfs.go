package boottest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// suite is the Debian release every rootfs of the matrix comes from.
const suite = "bookworm"

// recipe is a Debian rootfs made with debootstrap, then maybe changed in a
// chroot, and cached as a tar in the boot cache under its name. The name
// names the recipe: change one with the other, so that a cache made by
// another recipe is not taken for this one.
type recipe struct {
	tarName string
	args    []string // debootstrap's, before the target and the mirror
	// then runs in the debootstrapped tree, with /proc mounted, before it
	// is tarred ("" for nothing): a shell command line, run by the host's
	// sh, which chroots as it needs.
	then string
}

// The matrix's Debian rootfs recipes. The one-step `--include=openrc`
// fails on a conflict with sysv-rc; apt-get inside swaps them.
var (
	systemdRecipe = recipe{tarName: "rootfs-bookworm-minbase-systemd-sysv-iproute2.tar",
		args: []string{"--variant=minbase", "--include=systemd-sysv,iproute2", suite}}
	sysvinitRecipe = recipe{tarName: "rootfs-bookworm-minbase-sysvinit-core-iproute2.tar",
		args: []string{"--variant=minbase", "--include=sysvinit-core,iproute2", suite}}
	openrcRecipe = recipe{tarName: "rootfs-bookworm-minbase-sysvinit-core-iproute2-then-openrc.tar",
		args: sysvinitRecipe.args,
		then: `DEBIAN_FRONTEND=noninteractive chroot "$TARGET" apt-get install -y -q --no-install-recommends openrc && chroot "$TARGET" apt-get clean`}
	runitRecipe = recipe{tarName: "rootfs-bookworm-minbase-runit-init-iproute2.tar",
		args: []string{"--variant=minbase", "--include=runit-init,iproute2", suite}}
	// minbaseRecipe is what `docker export` of debian:bookworm gives: no
	// init, no iproute2.
	minbaseRecipe = recipe{tarName: "rootfs-bookworm-minbase.tar",
		args: []string{"--variant=minbase", suite}}
)

// baseTarName is the systemd rootfs's cached tar; make bench uses it too.
var baseTarName = systemdRecipe.tarName

// errNeedRoot says that a base rootfs cannot be built as this user.
var errNeedRoot = errors.New("debootstrap needs root (or set " + envRootfsTar + " to a rootfs tar)")

// buildRecipe returns the recipe's tar: cached, else built now with
// debootstrap in scratch and cached. built says whether it was built now.
func buildRecipe(ctx context.Context, cacheDir string, r recipe, scratch string, logf func(string, ...any)) (tarPath string, built bool, err error) {
	cached := filepath.Join(cacheDir, r.tarName)
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
	target, err := os.MkdirTemp(scratch, "debootstrap-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(target)
	// MkdirTemp makes it 0700, and the tar's root entry takes the mode:
	// an image whose / only root may enter.
	if err := os.Chmod(target, 0o755); err != nil {
		return "", false, err
	}
	logf("debootstrap %v from %s (%v at most)", r.args, mirror, debootstrapTimeout)
	args := append(append([]string{}, r.args...), target, mirror)
	if _, err := runTool(ctx, debootstrapTimeout, runOpts{privateMounts: true}, "debootstrap", args...); err != nil {
		// debootstrap's own log says which package failed, and it keeps
		// the log only when it fails.
		if b, lerr := os.ReadFile(filepath.Join(target, "debootstrap", "debootstrap.log")); lerr == nil {
			err = fmt.Errorf("%w\ndebootstrap.log:\n%s", err, tail(b, maxErrOutput))
		}
		return "", false, err
	}
	if r.then != "" {
		logf("in the chroot: %s", r.then)
		// A private mount namespace: the /proc mounted for apt vanishes
		// with it, whatever happens.
		script := `mount -t proc proc "$TARGET/proc" && ` + r.then
		if _, err := runTool(ctx, debootstrapTimeout, runOpts{privateMounts: true, env: []string{"TARGET=" + target}},
			"sh", "-c", script); err != nil {
			return "", false, err
		}
	}

	// Write the tar beside its final name and rename it, so that a cut run
	// never leaves a cached tar that looks whole. Downloaded packages and
	// apt's lists are left out, as an image build would clean them.
	tmp, err := os.CreateTemp(cacheDir, ".rootfs-*.tar")
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
	path, built, err := buildRecipe(ctx, c.cacheDir, systemdRecipe, scratch, logf)
	source = "the boot test's cache"
	if built {
		source = "built now with debootstrap, cached"
	}
	return path, source, err
}
