package ext4pack_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain points the blob cache's default at a directory of the tests'
// own: a test that pulls from a registry with the default options must
// not fill, nor read, the cache of the machine's user. Go's build cache,
// which defaults to the same place, stays where it was: the tests that
// build the binary would build everything again.
func TestMain(m *testing.M) {
	if os.Getenv("GOCACHE") == "" {
		if d, err := os.UserCacheDir(); err == nil {
			os.Setenv("GOCACHE", filepath.Join(d, "go-build"))
		}
	}
	dir, err := os.MkdirTemp("", "ext4pack-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
