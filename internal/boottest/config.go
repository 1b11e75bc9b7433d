package boottest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Environment variables; doc.go says what each does.
const (
	envRun       = "EXT4PACK_BOOT_TEST"
	envCache     = "EXT4PACK_CACHE"
	envRootfsTar = "EXT4PACK_BOOT_ROOTFS_TAR"
	envTimeout   = "EXT4PACK_BOOT_TIMEOUT"
	envBin       = "EXT4PACK_BIN"
	envLogs      = "EXT4PACK_BOOT_LOGS"
	envGuests    = "EXT4PACK_BOOT_GUESTS"
	envParallel  = "EXT4PACK_BOOT_PARALLEL"
	envCI        = "CI"
)

// Per-step time limits. A step that hangs (a mirror that stops answering,
// a guest that never reaches multi-user.target) fails the test with what it
// printed, instead of eating the whole go test timeout.
const (
	debootstrapTimeout = 20 * time.Minute
	downloadTimeout    = 5 * time.Minute
	toolTimeout        = 5 * time.Minute
	// TCG emulates every instruction; a full systemd boot takes 15-25 s on
	// an idle 2-core machine and several times that on a loaded one, and
	// the checker waits up to a minute for an agent that never answers.
	bootTimeoutTCG = 300 * time.Second
	bootTimeoutKVM = 120 * time.Second
	// defaultParallel is how many guests go at once: two qemu processes
	// keep a 2-core machine busy while one of them waits in its guest (a
	// checker's timeout, a shutdown's sleep) or builds its image.
	defaultParallel = 2
)

// config is the boot test's settings, read from the environment.
type config struct {
	cacheDir    string        // downloads and the cached base rootfs tar
	rootfsTar   string        // a base rootfs tar to use as is; "" to debootstrap one
	bootTimeout time.Duration // 0: the default for the accelerator
	ext4packBin string        // a prebuilt ext4pack; "" to build one
	logsDir     string        // where to keep each boot's serial logs; "" to keep none
	parallel    int           // guests built and booted at once
}

// runDecision says whether the boot test runs in this environment and, if
// not, why. It runs when asked (EXT4PACK_BOOT_TEST=1) and in CI, unless told
// not to (EXT4PACK_BOOT_TEST=0): it takes minutes and root, so a developer's
// plain `go test ./...` skips it.
func runDecision(getenv func(string) string) (run bool, why string) {
	switch v := getenv(envRun); v {
	case "1":
		return true, ""
	case "0":
		return false, envRun + "=0 turns the boot test off"
	case "":
		if getenv(envCI) != "" {
			return true, ""
		}
		return false, "the boot test debootstraps a Debian rootfs and boots it under qemu (a minute or more, root the first time): run `make boot-test`, or set " + envRun + "=1 (CI runs it)"
	default:
		return false, fmt.Sprintf("%s=%q: want 1 (run) or 0 (skip)", envRun, v)
	}
}

// loadConfig reads the settings. Bad values are errors, not defaults: a typo
// in a timeout should not quietly give a different test.
func loadConfig(getenv func(string) string) (config, error) {
	var c config
	c.cacheDir = getenv(envCache)
	if c.cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return c, fmt.Errorf("no cache directory: set %s (%w)", envCache, err)
		}
		c.cacheDir = filepath.Join(base, "ext4pack-boottest")
	}
	abs, err := filepath.Abs(c.cacheDir)
	if err != nil {
		return c, fmt.Errorf("%s: %w", envCache, err)
	}
	c.cacheDir = abs

	if p := getenv(envRootfsTar); p != "" {
		if c.rootfsTar, err = filepath.Abs(p); err != nil {
			return c, fmt.Errorf("%s: %w", envRootfsTar, err)
		}
	}
	if v := getenv(envTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("%s=%q: want a positive Go duration such as 300s", envTimeout, v)
		}
		c.bootTimeout = d
	}
	c.parallel = defaultParallel
	if v := getenv(envParallel); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 16 {
			return c, fmt.Errorf("%s=%q: want a number of guests from 1 to 16", envParallel, v)
		}
		c.parallel = n
	}
	if p := getenv(envLogs); p != "" {
		if c.logsDir, err = filepath.Abs(p); err != nil {
			return c, fmt.Errorf("%s: %w", envLogs, err)
		}
	}
	if p := getenv(envBin); p != "" {
		if c.ext4packBin, err = filepath.Abs(p); err != nil {
			return c, fmt.Errorf("%s: %w", envBin, err)
		}
	}
	return c, nil
}

// moduleRoot returns the directory that holds go.mod, found upwards from
// the working directory (go test runs a test in its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// hostHasVirtualization reports whether /proc/cpuinfo's flags show vmx
// (Intel VT-x) or svm (AMD-V). /dev/kvm alone is not enough: a PVM host
// provides /dev/kvm but boots no stock kernel, and its cpuinfo has neither.
func hostHasVirtualization(cpuinfo string) bool {
	for _, line := range strings.Split(cpuinfo, "\n") {
		key, flags, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for _, f := range strings.Fields(flags) {
			if f == "vmx" || f == "svm" {
				return true
			}
		}
	}
	return false
}
