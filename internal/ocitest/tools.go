package ocitest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// Run runs a tool the tests use (umoci, skopeo, ...) and fails t with its
// output if it fails. It skips t, or fails it in CI, when the tool is
// missing.
func Run(t testing.TB, tool, aptPackage string, args ...string) string {
	t.Helper()
	oracle.RequireTool(t, tool, aptPackage)
	cmd := exec.Command(tool, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Skopeo runs skopeo with no signature policy (the images are the test's
// own) and plain HTTP to registries on 127.0.0.1.
func Skopeo(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "skopeo", "skopeo", append([]string{"--insecure-policy"}, args...)...)
}

// Umoci runs umoci.
func Umoci(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "umoci", "umoci", args...)
}

// Registry is distribution's docker-registry, serving on 127.0.0.1.
type Registry struct {
	// Host is HOST:PORT.
	Host string
	// User and Password, when set, are the only credentials it takes.
	User, Password string
	// Storage is the root of its filesystem storage: a blob is at
	// docker/registry/v2/blobs/sha256/HH/HEX/data, for tests that damage
	// what it serves.
	Storage string

	t       testing.TB
	cfgPath string
	cmd     *exec.Cmd
	logs    *syncBuffer
}

// RegistryOptions configure StartRegistryWith.
type RegistryOptions struct {
	// User and Password turn on htpasswd authentication.
	User, Password string
	// RedirectTo, when set, makes the registry redirect blob GETs to
	// that base URL (distribution's redirect storage middleware), where
	// another server must serve Storage: the shape of a registry whose
	// blobs live on a CDN.
	RedirectTo string
}

// StartRegistry starts a registry for t, with htpasswd authentication
// when user is not empty, and stops it when t ends.
func StartRegistry(t testing.TB, user, password string) *Registry {
	t.Helper()
	return StartRegistryWith(t, RegistryOptions{User: user, Password: password})
}

// StartRegistryWith starts a registry for t as o says, and stops it when
// t ends. Its access log is kept: BlobGets counts from it.
func StartRegistryWith(t testing.TB, o RegistryOptions) *Registry {
	t.Helper()
	oracle.RequireTool(t, "docker-registry", "docker-registry")
	dir := t.TempDir()
	port := freePort(t)
	r := &Registry{Host: fmt.Sprintf("127.0.0.1:%d", port), User: o.User, Password: o.Password, Storage: filepath.Join(dir, "data"), t: t, logs: &syncBuffer{}}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		r.Storage, r.Host)
	if o.User != "" {
		out := Run(t, "htpasswd", "apache2-utils", "-Bbn", o.User, o.Password)
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: ext4pack-test\n    path: %s\n", pw)
	}
	if o.RedirectTo != "" {
		cfg += fmt.Sprintf("middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: %s\n", o.RedirectTo)
	}
	r.cfgPath = filepath.Join(dir, "config.yml")
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Start(t)
	t.Cleanup(r.Stop)
	return r
}

// Start starts the registry again after Stop, on the same address and
// storage, and waits until it answers.
func (r *Registry) Start(t testing.TB) {
	t.Helper()
	cmd := exec.Command("docker-registry", "serve", r.cfgPath)
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.cmd = cmd
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", r.Host, err, r.logs.String())
		}
	}
}

// Stop kills the registry: its connections drop, new ones are refused.
func (r *Registry) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// BlobPath is where the registry stores the blob of digest
// ("sha256:HEX").
func (r *Registry) BlobPath(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.Storage, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

// Gets counts the GET requests in the access log since the last
// ResetLog whose path holds all of parts: Gets("/blobs/") counts the
// blob requests (answered by a redirect or not), Gets("/manifests/") the
// manifests', Gets() all of them (pings included).
func (r *Registry) Gets(parts ...string) int {
	n := 0
next:
	for _, l := range strings.Split(r.logs.String(), "\n") {
		_, req, ok := strings.Cut(l, "\"GET /v2/")
		if !ok {
			continue
		}
		path, _, _ := strings.Cut(req, " ")
		for _, p := range parts {
			if !strings.Contains(path, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// Log is the registry's output since the last ResetLog.
func (r *Registry) Log() string { return r.logs.String() }

// ResetLog forgets the access log so far. The registry writes a
// request's line after its answer is sent: ResetLog first waits for the
// log to be quiet for 200 ms, so that no line of an earlier request
// comes after.
func (r *Registry) ResetLog() {
	for n := -1; n != len(r.logs.String()); time.Sleep(200 * time.Millisecond) {
		n = len(r.logs.String())
	}
	r.logs.Reset()
}

// syncBuffer is a bytes.Buffer that a process's output may write from
// another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// Push copies the image src (a skopeo reference, such as oci:DIR:TAG) to
// REPO in the registry, every platform of an index included, and returns
// the docker:// reference.
func (r *Registry) Push(t testing.TB, src, repo string) string {
	t.Helper()
	dst := "docker://" + r.Host + "/" + repo
	args := []string{"copy", "--all", "--dest-tls-verify=false"}
	if r.User != "" {
		args = append(args, "--dest-creds", r.User+":"+r.Password)
	}
	Skopeo(t, append(args, src, dst)...)
	return dst
}

// DockerConfig writes a docker config.json with r's credentials into a
// new directory, for $DOCKER_CONFIG.
func (r *Registry) DockerConfig(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{r.Host: map[string]string{"auth": auth}}})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// LayerDigests are the digests of the layer blobs of the image tagged
// tag in the OCI layout at dir, oldest first.
func LayerDigests(t testing.TB, dir, tag string) []string {
	t.Helper()
	var out []string
	for _, l := range layerDescriptors(t, dir, tag) {
		out = append(out, l.Digest)
	}
	return out
}

// layerDescriptors are the layers' descriptors of the image tagged tag in
// the OCI layout at dir, oldest first.
func layerDescriptors(t testing.TB, dir, tag string) []Descriptor {
	t.Helper()
	read := func(digest string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var idx struct{ Manifests []Descriptor }
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	var man struct{ Layers []Descriptor }
	for _, d := range idx.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == tag {
			if err := json.Unmarshal(read(d.Digest), &man); err != nil {
				t.Fatal(err)
			}
		}
	}
	if man.Layers == nil {
		t.Fatalf("ocitest: no image %q in %s", tag, dir)
	}
	return man.Layers
}

// LayerTars reads the layers of the image tagged tag in the OCI layout
// at dir, decompressed, oldest first: what Reference takes.
func LayerTars(t testing.TB, dir, tag string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, l := range layerDescriptors(t, dir, tag) {
		blob, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(l.Digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = bytes.NewReader(blob)
		switch {
		case strings.HasSuffix(l.MediaType, "gzip"):
			zr, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		case strings.HasSuffix(l.MediaType, "zstd"):
			zr, err := zstd.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			r = zr
		}
		tar, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tar)
	}
	return out
}
