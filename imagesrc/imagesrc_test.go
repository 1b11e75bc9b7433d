package imagesrc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func hashOf(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// TestVerifier: a blob passes only with its size and digest; a short, a
// long and a changed blob each fail with ErrDigest, the long one before
// its end is read.
func TestVerifier(t *testing.T) {
	blob := bytes.Repeat([]byte("layer data "), 100000)
	good := hashOf(blob)
	read := func(b []byte, size int64, h v1.Hash) error {
		v := newVerifier(io.NopCloser(bytes.NewReader(b)), "layer 1 of 1", size, h)
		defer v.Close()
		return Finish(v)
	}
	if err := read(blob, int64(len(blob)), good); err != nil {
		t.Errorf("good blob: %v", err)
	}
	if err := read(blob, -1, v1.Hash{}); err != nil {
		t.Errorf("no size, no digest: %v", err)
	}
	changed := bytes.Clone(blob)
	changed[5000] ^= 1
	for name, err := range map[string]error{
		"short":   read(blob[:1000], int64(len(blob)), good),
		"long":    read(append(bytes.Clone(blob), 'x'), int64(len(blob)), good),
		"changed": read(changed, int64(len(blob)), good),
	} {
		var e *Error
		if !errors.Is(err, ErrDigest) || !errors.As(err, &e) || e.Layer != "layer 1 of 1" {
			t.Errorf("%s blob: %v, want ErrDigest naming the layer", name, err)
		}
	}
	// Reading stops a byte past the size: an endless blob is not read.
	v := newVerifier(io.NopCloser(endless{}), "x", 10, good)
	if n, err := io.Copy(io.Discard, v); !errors.Is(err, ErrDigest) || n > 11 {
		t.Errorf("endless blob: read %d, %v", n, err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

// TestReadAhead: the read-ahead reader gives the same bytes, whatever the
// reads, and the source's error.
func TestReadAhead(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 500000)
	got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(readAhead(io.NopCloser(bytes.NewReader(data))), 10)))
	if err != nil || string(got) != "0123456789" {
		t.Errorf("first bytes: %q, %v", got, err)
	}
	r := readAhead(io.NopCloser(bytes.NewReader(data)))
	got, err = io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("whole: %d bytes, %v", len(got), err)
	}
	r.Close()
	boom := errors.New("boom")
	_, err = io.ReadAll(readAhead(io.NopCloser(iotest.ErrReader(boom))))
	if !errors.Is(err, boom) {
		t.Errorf("error: %v", err)
	}
	// Closing before the end stops the goroutine.
	r = readAhead(io.NopCloser(endless{}))
	buf := make([]byte, 10)
	r.Read(buf)
	r.Close()
}

func TestPickPlatform(t *testing.T) {
	idx := &v1.IndexManifest{Manifests: []v1.Descriptor{
		{Digest: hashOf([]byte("amd64")), Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
		{Digest: hashOf([]byte("arm")), Platform: &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{Digest: hashOf([]byte("arm64v8")), Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{Digest: hashOf([]byte("att")), Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"}},
		{Digest: hashOf([]byte("win")), Platform: &v1.Platform{OS: "windows", Architecture: "amd64"}},
	}}
	for _, tc := range []struct {
		want v1.Platform
		got  string
	}{
		{v1.Platform{OS: "linux", Architecture: "amd64"}, "amd64"},
		{v1.Platform{OS: "linux", Architecture: "arm64"}, "arm64v8"},
		{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "arm64v8"},
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "arm"},
	} {
		d, err := pickPlatform(idx, tc.want)
		if err != nil || d.Digest != hashOf([]byte(tc.got)) {
			t.Errorf("%s: %v, %v", tc.want, d.Digest, err)
		}
	}
	_, err := pickPlatform(idx, v1.Platform{OS: "linux", Architecture: "s390x"})
	if err == nil || !strings.Contains(err.Error(), "it has: linux/amd64, linux/arm/v7, linux/arm64/v8, windows/amd64 ") {
		t.Errorf("missing platform: %v", err)
	}
	if _, err := pickPlatform(idx, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}); err == nil {
		t.Errorf("arm/v6 matched arm/v7")
	}
}

func TestWantPlatform(t *testing.T) {
	for _, tc := range []struct {
		o        Options
		want     string
		explicit bool
		bad      bool
	}{
		{Options{Platform: "linux/arm64"}, "linux/arm64", true, false},
		{Options{Platform: "linux/aarch64"}, "linux/arm64", true, false},
		{Options{Arch: "x86_64"}, "linux/amd64", true, false},
		{Options{Platform: "linux/arm64", Arch: "x86_64"}, "", false, true},
		{Options{Platform: "linux"}, "", false, true},
	} {
		p, explicit, err := wantPlatform(tc.o)
		if (err != nil) != tc.bad || !tc.bad && (p.String() != tc.want || explicit != tc.explicit) {
			t.Errorf("%+v: %s %v %v", tc.o, p, explicit, err)
		}
	}
}

func TestPickTag(t *testing.T) {
	named := func(n string) v1.Descriptor {
		return v1.Descriptor{Digest: hashOf([]byte(n)), Annotations: map[string]string{refNameAnnotation: n}}
	}
	idx := &v1.IndexManifest{Manifests: []v1.Descriptor{named("v1"), named("docker.io/library/alpine:3.20")}}
	for tag, want := range map[string]string{"v1": "v1", "3.20": "docker.io/library/alpine:3.20", "docker.io/library/alpine:3.20": "docker.io/library/alpine:3.20"} {
		d, err := pickTag(idx, tag)
		if err != nil || d.Digest != hashOf([]byte(want)) {
			t.Errorf("%s: %v", tag, err)
		}
	}
	if _, err := pickTag(idx, ""); err == nil || !strings.Contains(err.Error(), "holds 2 images") {
		t.Errorf("no tag: %v", err)
	}
	if _, err := pickTag(&v1.IndexManifest{Manifests: []v1.Descriptor{{}}}, ""); err != nil {
		t.Errorf("one untagged image, no tag: %v", err)
	}
}

func TestDigestInName(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for name, want := range map[string]string{
		"blobs/sha256/" + hex:   hex,
		hex + ".json":           hex,
		hex + ".tar":            hex,
		hex + "/layer.tar":      "",
		"blobs/sha512/" + hex:   "",
		"x/" + hex + ".tar":     "",
		strings.ToUpper(hex):    "",
		"blobs/sha256/" + "abc": "",
	} {
		if got := digestInName(name).Hex; got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

func TestPickDockerImage(t *testing.T) {
	ms := []dockerManifest{{Config: "a.json", RepoTags: []string{"app:1"}}, {Config: "b.json", RepoTags: []string{"docker.io/library/debian:12"}}}
	for sel, want := range map[string]string{"app:1": "a.json", "index.docker.io/library/app:1": "a.json", "debian:12": "b.json", "@1": "b.json"} {
		m, err := pickDockerImage(ms, sel)
		if err != nil || m.Config != want {
			t.Errorf("%q: %+v %v", sel, m, err)
		}
	}
	for _, sel := range []string{"", "@2", "nope:1", "@x"} {
		if _, err := pickDockerImage(ms, sel); err == nil {
			t.Errorf("%q: no error", sel)
		}
	}
}

// TestOpenRefs: the transports, and what is a bare reference.
func TestOpenRefs(t *testing.T) {
	ctx := context.Background()
	for ref, msg := range map[string]string{
		"dir:/x":                  `unknown transport "dir:"`,
		"containers-storage:x":    `unknown transport "containers-storage:"`,
		"ftp://x/y":               `unknown transport "ftp:"`,
		"oci:":                    "needs a directory",
		"oci-archive:":            "needs a file",
		"docker-archive:":         "needs a file",
		"oci:/nonexistent/layout": "no such file",
		"docker://UPPER/x":        "not an image reference",
	} {
		_, err := Open(ctx, ref, Options{})
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", ref, err, msg)
		}
	}
}

// TestIsRegistry: which references are fetched (and cached).
func TestIsRegistry(t *testing.T) {
	for ref, want := range map[string]bool{
		"docker://debian:12":             true,
		"alpine:3.20":                    true,
		"ghcr.io/o/r@sha256:0123":        true,
		"localhost:5000/x:y":             true,
		"docker:5000/x:y":                true, // a host named docker
		"oci:./layout:v1":                false,
		"oci-archive:a.tar":              false,
		"docker-archive:a.tar:debian:12": false,
		"dir:/x":                         false,
		"containers-storage:x":           false,
	} {
		if got := IsRegistry(ref); got != want {
			t.Errorf("IsRegistry(%q) = %v, want %v", ref, got, want)
		}
	}
}

// TestContentRange reads Content-Range as 206 and 416 answers write it.
func TestContentRange(t *testing.T) {
	for in, want := range map[string][3]int64{
		"bytes 0-99/1000":    {0, 1000, 1},
		"bytes 500-999/1000": {500, 1000, 1},
		"bytes 500-999/*":    {500, -1, 1},
		"bytes */1000":       {-1, 1000, 1},
		"bytes 1-2":          {0, 0, 0},
		"items 0-1/2":        {0, 0, 0},
		"bytes x-1/2":        {0, 0, 0},
		"bytes 0-1/lots":     {0, 0, 0},
	} {
		first, size, ok := contentRange(in)
		okN := int64(0)
		if ok {
			okN = 1
		}
		if got := [3]int64{first, size, okN}; got != want {
			t.Errorf("contentRange(%q) = %v, want %v", in, got, want)
		}
	}
}
