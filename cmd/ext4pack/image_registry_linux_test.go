package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/ocitest"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// TestRegistryErrors: a registry that refuses the login, an unknown tag
// and a registry that is down each give a clear error, exit 1, and
// nothing left; with the login in $DOCKER_CONFIG the same image builds.
func TestRegistryErrors(t *testing.T) {
	lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
	lay.Tag("v1", lay.Image(ocitest.Image{Layers: []ocitest.Layer{{Tar: layerTar(t, "etc/x", "x"), Compression: "gzip"}}}))
	lay.Close()
	reg := ocitest.StartRegistry(t, "tester", "s3cret")
	reg.Push(t, "oci:"+lay.Dir+":v1", "private/img:v1")
	t.Setenv("HOME", t.TempDir()) // no ~/.docker/config.json of the machine's
	t.Setenv("DOCKER_CONFIG", t.TempDir())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		name, ref string
		msg       []string
	}{
		{"login refused", reg.Host + "/private/img:v1", []string{"refused access", "docker login " + reg.Host}},
		{"down", down + "/x/y:z", []string{"cannot reach registry " + down, "tried 3 times"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			code, stdout, stderr := runCLI(t, "image", "--image", tc.ref, "--out", filepath.Join(dir, "out.img"))
			t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), stderr)
			if code != 1 || stdout != "" {
				t.Errorf("exit %d, stdout %q", code, stdout)
			}
			for _, m := range tc.msg {
				if !strings.Contains(stderr, m) {
					t.Errorf("stderr lacks %q", m)
				}
			}
			requireEmpty(t, dir)
		})
	}

	t.Setenv("DOCKER_CONFIG", reg.DockerConfig(t))
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "image", "--image", "docker://"+reg.Host+"/private/img:nope", "--out", filepath.Join(dir, "out.img"))
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("registry %s has no image %s/private/img:nope", reg.Host, reg.Host)) {
		t.Errorf("unknown tag: exit %d, %s", code, stderr)
	}
	requireEmpty(t, dir)
	out := filepath.Join(dir, "out.img")
	if code, _, stderr := runCLI(t, "image", "--image", "docker://"+reg.Host+"/private/img:v1", "--out", out); code != 0 {
		t.Fatalf("with the login: exit %d: %s", code, stderr)
	}
	oracle.Fsck(t, out)
}
