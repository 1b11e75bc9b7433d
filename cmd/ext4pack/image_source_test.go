package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/internal/ocitest"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// layerTar is a small layer holding name with content.
func layerTar(t *testing.T, name, content string) []byte {
	b := oracle.NewTar(t)
	b.Dir("etc", 0o755)
	b.File(name, 0o644, []byte(content))
	return b.Bytes()
}

// twoPlatforms writes a layout whose tag "multi" is an index of an amd64
// and an arm64 image, each with /etc/arch saying which it is.
func twoPlatforms(t *testing.T) string {
	lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
	amd := lay.Image(ocitest.Image{Arch: "amd64", Layers: []ocitest.Layer{{Tar: layerTar(t, "etc/arch", "amd64"), Compression: "gzip"}}})
	arm := lay.Image(ocitest.Image{Arch: "arm64", Variant: "v8", Layers: []ocitest.Layer{{Tar: layerTar(t, "etc/arch", "arm64 v8"), Compression: "gzip"}}})
	lay.Tag("multi", lay.Index(amd, arm))
	lay.Close()
	return lay.Dir
}

// TestImagePlatform: --platform and --arch pick from an index; the
// default is the host's arch.
func TestImagePlatform(t *testing.T) {
	dir := twoPlatforms(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "amd64"},
		{[]string{"--platform", "linux/arm64"}, "arm64 v8"},
		{[]string{"--platform", "linux/arm64/v8"}, "arm64 v8"},
		{[]string{"--platform", "linux/amd64"}, "amd64"},
	} {
		out := filepath.Join(t.TempDir(), "img")
		code, _, stderr := runCLI(t, append([]string{"image", "--image", "oci:" + dir + ":multi", "--out", out}, tc.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		oracle.Fsck(t, out)
		code, stdout, stderr := runCLI(t, "inspect", out, "/etc/arch")
		if code != 0 || !strings.Contains(stdout, "\t0644\t0:0\t"+itoa(len(tc.want))+"\t") {
			t.Errorf("%v: inspect: %d %s %s", tc.args, code, stdout, stderr)
		}
	}

	// make-bundle's --arch picks the platform, and names the bundle.
	out := filepath.Join(t.TempDir(), "b.tar.zst")
	code, _, stderr := runCLI(t, "make-bundle", "--image", "oci:"+dir+":multi", "--name", "multi", "--arch", "aarch64", "--no-agents", "--out", out)
	if code != 0 {
		t.Fatalf("make-bundle --arch aarch64: exit %d: %s", code, stderr)
	}
	_, m, _ := readBundle(t, out)
	if m.Arch != "aarch64" || m.Source == nil || !strings.HasPrefix(m.Source.Digest, "sha256:") || m.Source.Image != "oci:"+dir+":multi" {
		t.Errorf("manifest %+v source %+v", m, m.Source)
	}
}

// TestMakeBundleImageConfig: make-bundle --image records the source in
// manifest.json and writes the config's "config" object, verbatim, to
// /etc/banger/image-config.json.
func TestMakeBundleImageConfig(t *testing.T) {
	lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
	cfg := map[string]any{"Entrypoint": []string{"/bin/app"}, "Cmd": []string{"--serve"}, "Env": []string{"A=1"},
		"WorkingDir": "/srv", "User": "1000:1000", "StopSignal": "SIGTERM"}
	lay.Tag("v1", lay.Image(ocitest.Image{Config: cfg, Layers: []ocitest.Layer{{Tar: layerTar(t, "etc/x", "x")}}}))
	lay.Close()
	out := filepath.Join(t.TempDir(), "b.tar.zst")
	code, _, stderr := runCLI(t, "make-bundle", "--image", "oci:"+lay.Dir+":v1", "--name", "cfg", "--no-agents", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, m, img := readBundle(t, out)
	if m.Source == nil || m.Source.Image != "oci:"+lay.Dir+":v1" || m.Arch != "x86_64" {
		t.Errorf("manifest %+v", m)
	}
	imgPath := filepath.Join(t.TempDir(), "rootfs.ext4")
	if err := os.WriteFile(imgPath, img, 0o644); err != nil {
		t.Fatal(err)
	}
	oracle.Fsck(t, imgPath)
	code, stdout, _ := runCLI(t, "inspect", imgPath, "/etc/banger/image-config.json")
	want, _ := json.Marshal(cfg)
	if code != 0 || !strings.Contains(stdout, "\t0644\t0:0\t"+itoa(len(want))+"\t") {
		t.Errorf("inspect: %s (want the %d-byte config object)", stdout, len(want))
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestImageSourceErrors: each bad image is an error that says what is
// wrong, exit 1, and nothing left behind.
func TestImageSourceErrors(t *testing.T) {
	good := layerTar(t, "etc/x", "x")
	layout := func(img ocitest.Image, edit func(l *ocitest.Layout, d ocitest.Descriptor)) string {
		l := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
		d := l.Image(img)
		l.Tag("v1", d)
		l.Close()
		if edit != nil {
			edit(l, d)
		}
		return "oci:" + l.Dir + ":v1"
	}
	one := func(ly ocitest.Layer) ocitest.Image { return ocitest.Image{Layers: []ocitest.Layer{ly}} }
	firstLayer := func(l *ocitest.Layout, d ocitest.Descriptor) string {
		var m struct{ Layers []ocitest.Descriptor }
		b, _ := os.ReadFile(l.BlobPath(d))
		json.Unmarshal(b, &m)
		return l.BlobPath(m.Layers[0])
	}
	twoImages := func() string {
		l := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
		l.Tag("a", l.Image(one(ocitest.Layer{Tar: good})))
		l.Tag("b", l.Image(one(ocitest.Layer{Tar: layerTar(t, "etc/y", "y")})))
		l.Close()
		return "oci:" + l.Dir
	}
	for _, tc := range []struct {
		name string
		ref  string
		args []string
		msg  []string
	}{
		{"unknown tag", strings.TrimSuffix(layout(one(ocitest.Layer{Tar: good}), nil), ":v1") + ":nope", nil,
			[]string{`no image tagged "nope"`, "v1"}},
		{"several images, no tag", twoImages(), nil, []string{"name one with :TAG", "a, b"}},
		{"not a layout", "oci:" + t.TempDir(), nil, []string{"not an OCI image layout"}},
		{"unknown transport", "dir:/tmp/x", nil, []string{`unknown transport "dir:"`}},
		{"platform missing", "oci:" + twoPlatforms(t) + ":multi", []string{"--platform", "linux/s390x"},
			[]string{"no linux/s390x image", "linux/amd64, linux/arm64/v8"}},
		{"artifact", layout(ocitest.Image{ConfigMediaType: "application/vnd.cncf.helm.config.v1+json",
			Layers: []ocitest.Layer{{Tar: good, MediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip"}}}, nil),
			nil, []string{"not a container image"}},
		{"artifact type", layout(ocitest.Image{ArtifactType: "application/vnd.example.sbom", Layers: []ocitest.Layer{{Tar: good}}}, nil),
			nil, []string{"not a container image", "artifact of type application/vnd.example.sbom"}},
		{"windows", layout(ocitest.Image{OS: "windows", Layers: []ocitest.Layer{{Tar: good}}}, nil), nil, []string{"windows image", "Linux"}},
		{"foreign layer", layout(one(ocitest.Layer{Tar: good, Compression: "gzip", MediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
			URLs: []string{"https://example.com/layer"}}), nil), nil, []string{"foreign"}},
		{"unknown layer media type", layout(one(ocitest.Layer{Tar: good, MediaType: "application/vnd.example.layer.v1.squashfs"}), nil),
			nil, []string{`layer media type "application/vnd.example.layer.v1.squashfs"`}},
		{"truncated blob", layout(one(ocitest.Layer{Tar: good, Compression: "gzip"}), func(l *ocitest.Layout, d ocitest.Descriptor) {
			p := firstLayer(l, d)
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()/2)
		}), nil, []string{"layer 1 of 1", "truncated"}},
		{"tampered blob", layout(one(ocitest.Layer{Tar: good}), func(l *ocitest.Layout, d ocitest.Descriptor) {
			p := firstLayer(l, d)
			b, _ := os.ReadFile(p)
			b[600] ^= 1 // in the first file's data
			os.WriteFile(p, b, 0o644)
		}), nil, []string{"layer 1 of 1", "tampered"}},
		{"diff_id mismatch", layout(ocitest.Image{DiffIDs: []string{"sha256:" + strings.Repeat("0", 64)},
			Layers: []ocitest.Layer{{Tar: good, Compression: "zstd"}}}, nil), nil, []string{"layer 1 of 1", "diff_id"}},
		{"diff_id count", layout(ocitest.Image{DiffIDs: []string{}, Layers: []ocitest.Layer{{Tar: good}}}, nil), nil, []string{"0 diff_ids for 1 layers"}},
		{"hardlink to a whited-out file", layout(ocitest.Image{Layers: []ocitest.Layer{
			{Tar: good},
			{Tar: func() []byte { b := oracle.NewTar(t); b.File("etc/.wh.x", 0o644, nil); return b.Bytes() }()},
			{Tar: func() []byte { b := oracle.NewTar(t); b.Hardlink("etc/link", "etc/x"); return b.Bytes() }()},
		}}, nil), nil, []string{"layer 3 of 3", `"etc/link"`, "nothing in this layer or the layers below"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			code, stdout, stderr := runCLI(t, append([]string{"image", "--image", tc.ref, "--out", filepath.Join(dir, "out.img")}, tc.args...)...)
			if code != 1 || stdout != "" {
				t.Errorf("exit %d, stdout %q, want 1 and nothing", code, stdout)
			}
			for _, m := range tc.msg {
				if !strings.Contains(stderr, m) {
					t.Errorf("stderr %q lacks %q", stderr, m)
				}
			}
			requireEmpty(t, dir)
		})
	}
}

// TestImageArchContradiction: a bundle's --arch that contradicts the
// image's config is an error.
func TestImageArchContradiction(t *testing.T) {
	lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
	lay.Tag("v1", lay.Image(ocitest.Image{Arch: "arm64", Layers: []ocitest.Layer{{Tar: layerTar(t, "etc/x", "x")}}}))
	lay.Close()
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "make-bundle", "--image", "oci:"+lay.Dir, "--name", "x", "--arch", "x86_64", "--no-agents", "--out", filepath.Join(dir, "b.tar.zst"))
	if code != 1 || !strings.Contains(stderr, "linux/arm64") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	requireEmpty(t, dir)
}

// TestImageUsageErrors: one input, and --platform only with an image.
func TestImageUsageErrors(t *testing.T) {
	in := smallTar(t)
	for _, args := range [][]string{
		{"image", "--rootfs-tar", in, "--image", "oci:/x", "--out", "o"},
		{"image", "--rootfs-tar", in, "--platform", "linux/amd64", "--out", "o"},
		{"image", "--out", "o"},
		{"image", "--image", "oci:/x", "--platform", "linux", "--out", "o"},
	} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 2 || stdout != "" || stderr == "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want a usage error", args, code, stdout, stderr)
		}
	}
}
