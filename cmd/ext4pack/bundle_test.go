package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ext4pack/ext4pack"
	"github.com/ext4pack/ext4pack/bundle"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// guestPaths are the guest files of an image without init (the every-type
// tar has none), with their modes: SPEC's common ones, ext4pack-init, and
// the switch that makes the guest grow / to its disk.
var guestPaths = map[string]string{
	"/usr/local/bin/banger-vsock-agent":           "regular\t0755\t0:0",
	"/usr/local/libexec/banger-network-bootstrap": "regular\t0755\t0:0",
	"/usr/local/libexec/banger-first-boot":        "regular\t0755\t0:0",
	"/usr/local/sbin/ext4pack-init":               "regular\t0755\t0:0",
	"/etc/modules-load.d/banger-vsock.conf":       "regular\t0644\t0:0",
	"/var/lib/banger/first-boot-pending":          "regular\t0644\t0:0",
	"/etc/banger/grow-root":                       "regular\t0644\t0:0",
	"/sbin/init":                                  "symlink\t0777\t0:0",
}

// guestBin is one guest binary built once per test run.
type guestBin struct {
	sync.Once
	path string
	err  error
	out  []byte
}

var agentOnce, initOnce guestBin

// build builds the package pkg for amd64 once, as make build does, for
// --agent-bin and --init-bin (test binaries carry no embedded ones).
func (g *guestBin) build(t *testing.T, name, pkg string) string {
	t.Helper()
	g.Do(func() {
		dir, err := os.MkdirTemp("", "ext4pack-guestbin-*")
		if err != nil {
			g.err = err
			return
		}
		g.path = filepath.Join(dir, name)
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", g.path, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		g.out, g.err = cmd.CombinedOutput()
	})
	if g.err != nil {
		t.Fatalf("building %s: %v\n%s", name, g.err, g.out)
	}
	return g.path
}

func testAgent(t *testing.T) string {
	return agentOnce.build(t, "banger-vsock-agent", "../../agents/vsockagent")
}

func testInit(t *testing.T) string {
	return initOnce.build(t, "ext4pack-init", "../../agents/ext4packinit")
}

// readBundle returns the bundle's member names, manifest and image bytes.
func readBundle(t *testing.T, path string) ([]string, bundle.Manifest, []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var names []string
	var m bundle.Manifest
	var img []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case "manifest.json":
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
		case "rootfs.ext4":
			img = b
		}
	}
	return names, m, img
}

// TestMakeBundle is the bundle issue's "done when": the printed lines are
// true, the bundle holds exactly manifest.json and rootfs.ext4 with the
// manifest from the flags, the image is clean and holds the tar and the
// guest files, two runs give identical bytes, and inspect reads it with no
// external program to be found.
func TestMakeBundle(t *testing.T) {
	in := oracle.EveryTypeTar(t)
	agent := testAgent(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "every.tar.zst")
	args := []string{"make-bundle", "--rootfs-tar", in, "--name", "every-type", "--arch", "amd64",
		"--distro", "testos", "--kernel-ref", "vmlinux-6.1", "--description", "every entry type",
		"--agent-bin", agent, "--init-bin", testInit(t), "--out", out}
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "ext4pack: guest init: ext4pack-init (no /sbin/init)") {
		t.Errorf("stderr does not name the init:\n%s", stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	want := "path: " + out + "\nsha256: " + hex.EncodeToString(sum[:]) + "\nsize: " + strconv.Itoa(len(raw)) + "\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	names, m, img := readBundle(t, out)
	if strings.Join(names, ",") != "manifest.json,rootfs.ext4" {
		t.Errorf("members %v", names)
	}
	imgSum := sha256.Sum256(img)
	if m.Name != "every-type" || m.Arch != "x86_64" || m.Distro != "testos" || m.KernelRef != "vmlinux-6.1" ||
		m.Description != "every entry type" || m.Rootfs != "rootfs.ext4" || m.RootfsSizeBytes != int64(len(img)) ||
		m.RootfsSHA256 != hex.EncodeToString(imgSum[:]) || m.CreatedBy != "ext4pack "+ext4pack.Version ||
		m.GuestInit != "ext4pack-init" || !m.RootfsGrows {
		t.Errorf("manifest %+v", m)
	}
	imgPath := filepath.Join(t.TempDir(), "rootfs.ext4")
	if err := os.WriteFile(imgPath, img, 0o644); err != nil {
		t.Fatal(err)
	}
	oracle.Fsck(t, imgPath)
	newest, err := oracle.NewestMtime(in)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for p := range guestPaths {
		extra = append(extra, p)
	}
	extra = append(extra, "/usr/local", "/etc/modules-load.d", "/etc/banger", "/var/lib/banger", "/var", "/sbin")
	oracle.CompareMount(t, in, imgPath, oracle.CreatedMtime(newest), oracle.IgnoreExtra(extra...))

	// inspect takes the bundle as it is, and runs no external program.
	t.Run("inspect", func(t *testing.T) {
		t.Setenv("PATH", "")
		var paths []string
		for p := range guestPaths {
			paths = append(paths, p)
		}
		code, stdout, stderr := runCLI(t, append([]string{"inspect", out}, paths...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stdout, `"name": "every-type"`) {
			t.Errorf("no manifest in:\n%s", stdout)
		}
		for p, w := range guestPaths {
			if !strings.Contains(stdout, p+"\t"+w+"\t") {
				t.Errorf("inspect does not show %s as %s:\n%s", p, w, stdout)
			}
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		out2 := filepath.Join(t.TempDir(), "every.tar.zst")
		args2 := append([]string(nil), args...)
		args2[len(args2)-1] = out2
		if code, _, stderr := runCLI(t, args2...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		raw2, err := os.ReadFile(out2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, raw2) {
			t.Error("two runs on the same input gave different bundles")
		}
	})

	t.Run("json", func(t *testing.T) {
		out3 := filepath.Join(t.TempDir(), "every.tar.zst")
		args3 := append(append([]string(nil), args...), "--json")
		args3[len(args3)-2] = out3
		code, stdout, stderr := runCLI(t, args3...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(stdout), &e); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, stdout)
		}
		for k, v := range map[string]any{"name": "every-type", "distro": "testos", "arch": "x86_64",
			"kernel_ref": "vmlinux-6.1", "description": "every entry type", "tarball_url": "",
			"tarball_sha256": hex.EncodeToString(sum[:]), "size_bytes": float64(len(raw))} {
			if e[k] != v {
				t.Errorf("%s: %v, want %v", k, e[k], v)
			}
		}
		if len(e) != 8 {
			t.Errorf("%d keys, want 8: %v", len(e), e)
		}
	})
}

// TestMakeBundleErrors checks the exit codes and that nothing is left.
func TestMakeBundleErrors(t *testing.T) {
	in := oracle.EveryTypeTar(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar.zst")
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no name", []string{"--rootfs-tar", in, "--no-agents"}, 2, "--name"},
		{"bad name", []string{"--rootfs-tar", in, "--name", "Bad_Name", "--no-agents"}, 2, "--name"},
		{"name too long", []string{"--rootfs-tar", in, "--name", strings.Repeat("a", 65), "--no-agents"}, 2, "--name"},
		{"bad arch", []string{"--rootfs-tar", in, "--name", "x", "--arch", "sparc", "--no-agents"}, 2, "--arch"},
		{"no tar", []string{"--name", "x", "--no-agents"}, 2, "--rootfs-tar"},
		{"agents both ways", []string{"--rootfs-tar", in, "--name", "x", "--agent-bin", in, "--no-agents"}, 2, "contradict"},
		{"agent not an ELF", []string{"--rootfs-tar", in, "--name", "x", "--agent-bin", in}, 1, "agent"},
		{"no embedded agents", []string{"--rootfs-tar", in, "--name", "x"}, 1, "--agent-bin"},
		{"init both ways", []string{"--rootfs-tar", in, "--name", "x", "--init-bin", in, "--no-agents"}, 2, "contradict"},
		{"no embedded init", []string{"--rootfs-tar", in, "--name", "x", "--agent-bin", testAgent(t)}, 1, "--init-bin"},
		{"init not an ELF", []string{"--rootfs-tar", in, "--name", "x", "--agent-bin", testAgent(t), "--init-bin", in}, 1, "ext4pack-init"},
		{"unknown compression", []string{"--rootfs-tar", in, "--name", "x", "--no-agents", "--compression", "max"}, 2, `--compression "max": use one of fastest, default, better, best`},
		{"empty compression", []string{"--rootfs-tar", in, "--name", "x", "--no-agents", "--compression", ""}, 2, "--compression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"make-bundle", "--out", out}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.msg) || stdout != "" {
				t.Errorf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, tc.code, stdout, stderr, tc.msg)
			}
			requireEmpty(t, dir)
		})
	}
}

// TestMakeBundleLevels: each --compression level makes a bundle that
// decodes to the same image, the default is best, and the levels trade
// size as their names say.
func TestMakeBundleLevels(t *testing.T) {
	// Compressible content, as a rootfs's: this test's own binary.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin = bin[:min(len(bin), 6<<20)]
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	if err := tw.WriteHeader(&tar.Header{Name: "usr/bin/tool", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))}); err != nil {
		t.Fatal(err)
	}
	tw.Write(bin)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	in := writeTemp(t, "bin.tar", tb.Bytes())
	dir := t.TempDir()
	sizes := map[string]int64{}
	var images [][]byte
	for _, level := range append([]string{""}, bundle.Levels...) {
		out := filepath.Join(dir, "b-"+level+".tar.zst")
		args := []string{"make-bundle", "--rootfs-tar", in, "--name", "levels", "--no-agents", "--out", out}
		if level != "" {
			args = append(args, "--compression", level)
		}
		if code, _, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("--compression %q: exit %d: %s", level, code, stderr)
		}
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		sizes[level] = st.Size()
		_, _, img := readBundle(t, out)
		images = append(images, img)
		if !bytes.Equal(img, images[0]) {
			t.Errorf("--compression %s: the image differs from the default's", level)
		}
	}
	t.Logf("sizes: %v", sizes)
	if sizes[""] != sizes["best"] {
		t.Errorf("the default made %d bytes, best %d", sizes[""], sizes["best"])
	}
	if !(sizes["fastest"] > sizes["default"] && sizes["default"] > sizes["better"] && sizes["better"] > sizes["best"]) {
		t.Errorf("sizes do not fall from fastest to best: %v", sizes)
	}
}

// TestMakeBundleMemoryLimit: a memory limit below what compressing needs
// fails before the tar is read, saying what is needed and what set the
// limit, and leaves nothing behind. GOMEMLIMIT stands in for a cgroup
// limit here: both lower the budget the same way (bundle's TestPlan).
func TestMakeBundleMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(150 << 20))
	for _, tc := range []struct {
		level, msg string
	}{
		{"best", "needs 228 MiB (164 MiB for the encoder, 64 MiB for the rest), but the budget is 150 MiB, set by GOMEMLIMIT (the Go runtime's soft memory limit); raise it, or use --compression fastest, which needs 194 MiB"},
		{"fastest", "needs 194 MiB"},
	} {
		t.Run(tc.level, func(t *testing.T) {
			// A tar that does not exist: the limit is found before it is
			// opened.
			code, stdout, stderr := runCLI(t, "make-bundle", "--rootfs-tar", filepath.Join(dir, "no.tar"), "--name", "x",
				"--no-agents", "--compression", tc.level, "--out", filepath.Join(dir, "x.tar.zst"))
			if code != 1 || stdout != "" || !strings.Contains(stderr, tc.msg) || strings.Contains(stderr, "no.tar") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, stdout, stderr, tc.msg)
			}
			if tc.level == "fastest" && strings.Contains(stderr, "use --compression fastest") {
				t.Errorf("suggests the level it was given: %s", stderr)
			}
			requireEmpty(t, dir)
		})
	}
}
