//go:build linux

package main

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The Debian rootfs is the boot test's (internal/boottest/rootfs.go): the
// same recipe, the same cache directory and file name, so that either one
// reuses what the other built. boottest's builder is unexported, so the
// recipe is repeated here; keep the two in step.
const (
	debianSuite   = "bookworm"
	debianTarName = "rootfs-bookworm-minbase-systemd-sysv-iproute2.tar"
)

var debootstrapArgs = []string{"--variant=minbase", "--include=systemd-sysv,iproute2", debianSuite}

// debian describes the Debian tar a run used.
type debian struct {
	source    string // where it came from, for the report
	path      string // its copy in the work directory
	size      int64
	entries   int
	imageSize int64 // the size of ext4pack's image of it
}

// debianTar finds or builds the Debian rootfs tar and copies it into work,
// so that every pipeline reads it from the tmpfs.
func debianTar(ctx context.Context, c config, work string) (debian, error) {
	var d debian
	src, how := c.tar, "BENCH_TAR"
	if src == "" {
		cache, err := cacheDir()
		if err != nil {
			return d, err
		}
		src, how = filepath.Join(cache, debianTarName), "the boot test's cache"
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			logf("no %s: building it with debootstrap", src)
			if err := buildDebianTar(ctx, cache, work, src); err != nil {
				return d, err
			}
			how = "built now with debootstrap, cached"
		}
	}
	d.source = fmt.Sprintf("%s (%s)", src, how)
	d.path = filepath.Join(work, "debian.tar")
	if err := copyFile(src, d.path); err != nil {
		return d, err
	}
	st, err := os.Stat(d.path)
	if err != nil {
		return d, err
	}
	d.size = st.Size()
	if d.entries, err = countEntries(d.path); err != nil {
		return d, fmt.Errorf("%s: %w", src, err)
	}
	return d, nil
}

// cacheDir is boottest's: $EXT4PACK_CACHE, else the user cache directory's
// ext4pack-boottest.
func cacheDir() (string, error) {
	if d := os.Getenv("EXT4PACK_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set EXT4PACK_CACHE or BENCH_TAR (%w)", err)
	}
	return filepath.Join(base, "ext4pack-boottest"), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// countEntries counts a plain tar's headers.
func countEntries(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	n := 0
	for {
		_, err := tr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("not a plain tar (the harness needs one): %w", err)
		}
		n++
	}
}

// buildDebianTar runs boottest's recipe: debootstrap into scratch, in a
// mount namespace of its own so that its /proc and /sys mounts die with
// it, then GNU tar without the downloaded packages and apt lists, written
// beside dst and renamed into place.
func buildDebianTar(ctx context.Context, cache, scratch, dst string) error {
	if os.Geteuid() != 0 {
		return errors.New("debootstrap needs root: run as root, or set BENCH_TAR to a rootfs tar")
	}
	deboot, err := lookTool("debootstrap")
	if err != nil {
		return fmt.Errorf("%w (apt-get install debootstrap, or set BENCH_TAR)", err)
	}
	mirror, err := aptMirror("/etc/apt", debianSuite)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	target := filepath.Join(scratch, "debootstrap")
	logf("debootstrap %v from %s", debootstrapArgs, mirror)
	ctx1, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx1, deboot, append(append([]string{}, debootstrapArgs...), target, mirror)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debootstrap: %w", err)
	}
	defer os.RemoveAll(target)
	tmp, err := os.CreateTemp(cache, ".rootfs-*.tar")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	tarCmd := exec.CommandContext(ctx, "tar", "--numeric-owner", "--xattrs", "--sort=name",
		"--exclude=./var/cache/apt/archives/*.deb", "--exclude=./var/lib/apt/lists/*_*",
		"-C", target, "-cf", tmp.Name(), ".")
	tarCmd.Stderr = os.Stderr
	if err := tarCmd.Run(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	return os.Rename(tmp.Name(), dst)
}

// aptMirror returns the first enabled deb source for suite with an http,
// https or file URI, from sources.list and sources.list.d (*.list in the
// one-line format, *.sources in deb822), in the order apt reads them.
func aptMirror(etcApt, suite string) (string, error) {
	files := []string{filepath.Join(etcApt, "sources.list")}
	d := filepath.Join(etcApt, "sources.list.d")
	if ents, err := os.ReadDir(d); err == nil {
		for _, e := range ents {
			if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".list") || strings.HasSuffix(n, ".sources")) {
				files = append(files, filepath.Join(d, n))
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var stanzas [][3][]string // types, uris, suites
		if strings.HasSuffix(f, ".sources") {
			stanzas = deb822(string(b))
		} else {
			stanzas = oneLine(string(b))
		}
		for _, s := range stanzas {
			if !slices.Contains(s[0], "deb") || !slices.Contains(s[2], suite) {
				continue
			}
			for _, u := range s[1] {
				if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "file:/") {
					return strings.TrimSuffix(u, "/"), nil
				}
			}
		}
	}
	return "", fmt.Errorf("no enabled deb source for %s with an http, https or file URI under %s", suite, etcApt)
}

func oneLine(text string) [][3][]string {
	var out [][3][]string
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		rest := f[1:]
		if strings.HasPrefix(rest[0], "[") {
			i := slices.IndexFunc(rest, func(w string) bool { return strings.HasSuffix(w, "]") })
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		}
		if len(rest) >= 2 {
			out = append(out, [3][]string{{f[0]}, {rest[0]}, {rest[1]}})
		}
	}
	return out
}

func deb822(text string) [][3][]string {
	var out [][3][]string
	fields := map[string]string{}
	last := ""
	flush := func() {
		if len(fields) > 0 && !strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no") {
			out = append(out, [3][]string{strings.Fields(fields["types"]), strings.Fields(fields["uris"]), strings.Fields(fields["suites"])})
		}
		fields, last = map[string]string{}, ""
	}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			if k, v, ok := strings.Cut(line, ":"); ok {
				last = strings.ToLower(strings.TrimSpace(k))
				fields[last] = strings.TrimSpace(v)
			}
		}
	}
	flush()
	return out
}
