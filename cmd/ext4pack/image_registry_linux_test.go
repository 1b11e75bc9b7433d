package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
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
		{"down", down + "/x/y:z", []string{"cannot reach registry " + down, "tried 3 times over "}},
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

// TestRegistryRetries counts the attempts at a registry whose every
// connection is reset as it arrives, and times them: each request is
// tried 3 times, after about 1 s and then 3 s more (SPEC: refused
// connections are retried; imagesrc's backoff of 1 s, factor 3, 3 steps),
// and the message says how many tries there were. go-containerregistry
// pings a registry on 127.0.0.1 over https and http at once, so each
// scheme is counted on its own: a TLS ClientHello starts with 0x16.
func TestRegistryRetries(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	at := map[string][]time.Time{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			now := time.Now()
			b := make([]byte, 1)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			scheme := "unknown"
			if n, _ := c.Read(b); n == 1 {
				scheme = map[bool]string{true: "https", false: "http"}[b[0] == 0x16]
			}
			mu.Lock()
			at[scheme] = append(at[scheme], now)
			mu.Unlock()
			c.(*net.TCPConn).SetLinger(0) // a reset, not a clean close
			c.Close()
		}
	}()
	dir := t.TempDir()
	start := time.Now()
	code, _, stderr := runCLI(t, "image", "--image", l.Addr().String()+"/x/y:z", "--out", filepath.Join(dir, "out.img"))
	t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), stderr)
	if code != 1 || !strings.Contains(stderr, "cannot reach registry "+l.Addr().String()+" (tried 3 times over ") {
		t.Errorf("exit %d; want 1 and a message that says it tried 3 times", code)
	}
	requireEmpty(t, dir)
	mu.Lock()
	defer mu.Unlock()
	if len(at["http"]) == 0 {
		t.Fatalf("no plain HTTP attempt reached the server: %v", at)
	}
	for scheme, ts := range at {
		var gaps []time.Duration
		for i := 1; i < len(ts); i++ {
			gaps = append(gaps, ts[i].Sub(ts[i-1]).Round(10*time.Millisecond))
		}
		t.Logf("%s: %d attempts, %v apart", scheme, len(ts), gaps)
		if len(ts) != 3 {
			t.Errorf("%s: %d attempts, want 3", scheme, len(ts))
			continue
		}
		// Lower bounds only: under load a pause is longer, never shorter.
		if gaps[0] < 900*time.Millisecond || gaps[1] < 2700*time.Millisecond {
			t.Errorf("%s: attempts %v apart, want about 1 s and then 3 s", scheme, gaps)
		}
	}
}
