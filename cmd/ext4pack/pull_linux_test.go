package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ext4pack/ext4pack"
	"github.com/ext4pack/ext4pack/internal/ocitest"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// pushPullImage pushes an image of three layers of incompressible files
// (4.5 MB) to a new registry and returns the registry and the image's
// reference there.
func pushPullImage(t *testing.T) (*ocitest.Registry, string) {
	t.Helper()
	lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
	var layers []ocitest.Layer
	for i, size := range []int{3 << 20, 1 << 20, 500 << 10} {
		b := oracle.NewTar(t)
		b.Dir("opt", 0o755)
		b.File("opt/f"+string(rune('a'+i)), 0o644, oracle.Content(string(rune('a'+i)), size))
		layers = append(layers, ocitest.Layer{Tar: b.Bytes(), Compression: "gzip"})
	}
	lay.Tag("v1", lay.Image(ocitest.Image{Layers: layers}))
	lay.Close()
	reg := ocitest.StartRegistry(t, "", "")
	reg.Push(t, "oci:"+lay.Dir+":v1", "test/pull:v1")
	return reg, reg.Host + "/test/pull:v1"
}

// TestPullAndCache: image --image fills the cache that cache ls lists;
// a second image asks the registry nothing; --pull never builds with the
// registry gone, and names what it lacks once cache prune removed it;
// EXT4PACK_CACHE_MAX caps the cache.
func TestPullAndCache(t *testing.T) {
	reg, ref := pushPullImage(t)
	cache := filepath.Join(t.TempDir(), "cache")
	dir := t.TempDir()
	first := filepath.Join(dir, "first.img")
	if code, _, stderr := runCLI(t, "image", "--image", ref, "--out", first, "--cache", cache, "--jobs", "2"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	oracle.Fsck(t, first)
	code, stdout, _ := runCLI(t, "cache", "ls", "--cache", cache)
	if code != 0 || !strings.Contains(stdout, "tag "+ref) || !strings.HasSuffix(stdout, "5 blobs, 4.5 MiB, in "+cache+"\n") {
		t.Errorf("cache ls: exit %d:\n%s", code, stdout)
	}
	if st, err := os.Stat(cache); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the cache directory: %v, %v", st.Mode(), err)
	}

	reg.ResetLog()
	second := filepath.Join(dir, "second.img")
	if code, _, stderr := runCLI(t, "image", "--image", ref, "--out", second, "--cache", cache); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := reg.Gets(); n != 0 {
		t.Errorf("the second build made %d requests, want none", n)
	}
	sameFile(t, first, second)

	reg.Stop()
	never := filepath.Join(dir, "never.img")
	if code, _, stderr := runCLI(t, "image", "--image", ref, "--out", never, "--cache", cache, "--pull", "never"); code != 0 {
		t.Fatalf("--pull never, registry gone: exit %d: %s", code, stderr)
	}
	sameFile(t, first, never)

	code, stdout, _ = runCLI(t, "cache", "prune", "--cache", cache, "--max-size", "2M")
	if code != 0 || !strings.HasPrefix(stdout, "removed 1 blobs, 3.0 MiB; 4 blobs, 1.5 MiB, left in") {
		t.Errorf("cache prune --max-size 2M: exit %d: %s", code, stdout)
	}
	out := filepath.Join(t.TempDir(), "out.img")
	code, _, stderr := runCLI(t, "image", "--image", ref, "--out", out, "--cache", cache, "--pull", "never")
	if code != 1 || !strings.Contains(stderr, "layer 1 of 3") || !strings.Contains(stderr, "is not in the cache") {
		t.Errorf("--pull never without the base layer: exit %d: %s", code, stderr)
	}
	requireEmpty(t, filepath.Dir(out))
	code, stdout, _ = runCLI(t, "cache", "prune", "--cache", cache, "--all")
	if code != 0 || !strings.HasSuffix(stdout, "; 0 blobs, 0 B, left in "+cache+"\n") {
		t.Errorf("cache prune --all: exit %d: %s", code, stdout)
	}

	// The cap from the environment, with the registry back: the base
	// layer (3 MiB) and little else fit.
	reg.Start(t)
	t.Setenv(cacheMaxEnv, "3.5M")
	if code, _, stderr := runCLI(t, "image", "--image", ref, "--out", filepath.Join(dir, "capped.img"), "--cache", cache); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	list, err := ext4pack.ListCache(cache)
	var total int64
	for _, e := range list {
		total += e.Size
	}
	if err != nil || len(list) == 0 || len(list) == 5 || total > 3.5*(1<<20) {
		t.Errorf("%s=3.5M: %d blobs, %d bytes, %v", cacheMaxEnv, len(list), total, err)
	}
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s and %s differ", a, b)
	}
}

// TestPullProgressOnTerminal: at a terminal, a pull over a slow link
// shows the bytes built and the bytes downloaded, each with a percentage
// and the time left.
func TestPullProgressOnTerminal(t *testing.T) {
	_, ref := pushPullImage(t)
	host, _, _ := strings.Cut(ref, "/")
	proxy := ocitest.StartProxy(t, host)
	proxy.Toxic(t, `{"type": "bandwidth", "attributes": {"rate": 1500}}`) // 1.5 MB/s: 3 s
	bin := buildBinary(t)
	out := filepath.Join(t.TempDir(), "out.img")
	cmd := exec.Command(bin, "image", "--image", proxy.Host+"/test/pull:v1", "--out", out, "--jobs", "1", "--no-cache")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var seen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen.ReadFrom(tty)
	}()
	start := time.Now()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("image: %v", err)
	}
	t.Logf("the pull took %v", time.Since(start))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	text := seen.String()
	want := regexp.MustCompile(`\r\x1b\[Klayer 1 of 3 \(sha256:[0-9a-f]{12}\): built \d+% of 4\.5 MiB(, \d+s left)?; downloaded \d+% of 4\.5 MiB, \d+s left`)
	if !want.MatchString(text) {
		t.Errorf("the terminal did not show %s; it showed:\n%q", want, lastOf(text, 2000))
	}
	oracle.Fsck(t, out)
}
