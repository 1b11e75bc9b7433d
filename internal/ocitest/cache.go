package ocitest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// MainWithOwnCache is a TestMain for packages whose tests pull images:
// it points the blob cache's default ($XDG_CACHE_HOME/ext4pack) at a
// directory of the tests' own, so that a test that pulls with the default
// options neither fills nor reads the cache of the machine's user, runs
// the tests, removes the directory and exits with their code. Go's build
// cache, which defaults to the same place, stays where it was: the tests
// that build the binary would otherwise build everything again.
func MainWithOwnCache(m *testing.M) {
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
