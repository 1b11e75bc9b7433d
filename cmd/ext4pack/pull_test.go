package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestPullUsageErrors: the fetch and cache flags' bad values and
// contradictions are usage errors (exit 2), before anything is made.
func TestPullUsageErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.img")
	tar := smallTar(t)
	for _, tc := range []struct {
		name string
		env  string
		args []string
		msg  string
	}{
		{"pull", "", []string{"image", "--image", "x/y:z", "--out", out, "--pull", "sometimes"}, "--pull \"sometimes\": use always, missing or never"},
		{"jobs 0", "", []string{"image", "--image", "x/y:z", "--out", out, "--jobs", "0"}, "--jobs 0: out of range 1..64"},
		{"jobs 65", "", []string{"make-bundle", "--image", "x/y:z", "--name", "n", "--no-agents", "--jobs", "65"}, "--jobs 65: out of range 1..64"},
		{"cache and no-cache", "", []string{"image", "--image", "x/y:z", "--out", out, "--cache", dir, "--no-cache"}, "--cache and --no-cache contradict"},
		{"never without a cache", "", []string{"image", "--image", "x/y:z", "--out", out, "--pull", "never", "--no-cache"}, "--pull never builds from the cache"},
		{"a tar", "", []string{"image", "--rootfs-tar", tar, "--out", out, "--jobs", "2"}, "--jobs is for a registry's image; it needs --image"},
		{"cache-max", "", []string{"image", "--image", "x/y:z", "--out", out, "--cache-max", "10X"}, "--cache-max \"10X\""},
		{"env cap", "12 parsecs", []string{"image", "--image", "x/y:z", "--out", out}, "EXT4PACK_CACHE_MAX \"12 parsecs\""},
		{"prune all and max", "", []string{"cache", "prune", "--all", "--max-size", "1G"}, "--all and --max-size"},
		{"prune max", "", []string{"cache", "prune", "--max-size", "lots"}, "--max-size \"lots\""},
		{"cache alone", "", []string{"cache"}, "cache needs ls or prune"},
		{"cache what", "", []string{"cache", "clean"}, "cache \"clean\": use ls or prune"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(cacheMaxEnv, tc.env)
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tc.msg) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, stdout, stderr, tc.msg)
			}
			requireEmpty(t, dir)
		})
	}
}

// TestNoTestDependencies: the binary does not link the modules only the
// tests use (toxiproxy, and what it brings: prometheus, zerolog).
func TestNoTestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/ext4pack/ext4pack/blobstore") {
		t.Fatalf("go list -deps lists no blobstore: the test reads the wrong list:\n%s", out)
	}
	for _, m := range []string{"github.com/Shopify/toxiproxy", "github.com/prometheus/", "github.com/rs/zerolog"} {
		if strings.Contains(string(out), m) {
			t.Errorf("ext4pack links %s, a test dependency", m)
		}
	}
}
