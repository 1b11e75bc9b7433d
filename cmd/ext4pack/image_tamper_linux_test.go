package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/internal/ocitest"
)

// TestSourceDamage: a layer blob tampered with, a layer blob cut short,
// and a config whose diff_id does not match the layer are each an error
// naming the layer and saying what is wrong, exit 1, nothing left, from
// every source SPEC checks digests for: an OCI layout, an OCI archive, a
// docker save archive and a registry. The archives are skopeo's and the
// registry is distribution's; each is damaged where it stores the layer
// (a member of the archive, the registry's blob file), so that the source
// serves the damaged bytes as it would serve good ones.
func TestSourceDamage(t *testing.T) {
	reg := ocitest.StartRegistry(t, "", "")

	type fault struct {
		name    string
		diffIDs []string            // the config's diff_ids, to contradict the layer
		damage  func([]byte) []byte // what happens to the layer blob
		msg     string
	}
	faults := []fault{
		{name: "tampered", damage: func(b []byte) []byte {
			b = bytes.Clone(b)
			b[len(b)/2] ^= 0x10
			return b
		}, msg: "blob does not match its digest: its sha256 is"},
		{name: "truncated", damage: func(b []byte) []byte { return bytes.Clone(b[:len(b)/2]) }, msg: "blob does not match its digest: the blob ends after"},
		{name: "diff_id mismatch", diffIDs: []string{"sha256:" + strings.Repeat("0", 64)}, msg: "the config's diff_id says 0000"},
	}
	// Where each source keeps the layer, and how to damage it there.
	type source struct {
		name string
		// make returns the reference of the image in lay, in this source,
		// with its layer blob (digest layer) damaged by damage (nil: none).
		make func(t *testing.T, lay, layer string, damage func([]byte) []byte) string
		// msg replaces a fault's message where the source says it in
		// other words. A docker save archive names its layers by their
		// uncompressed digest, so a layer cut short there fails its
		// blob's digest. A registry serves a blob cut short whole, with
		// its own length, which ext4pack refuses before reading it.
		msg map[string]string
		// args are the flags each build of the source takes.
		args func(t *testing.T) []string
	}
	sources := []source{
		{name: "oci", make: func(t *testing.T, lay, layer string, damage func([]byte) []byte) string {
			if damage != nil {
				p := filepath.Join(lay, "blobs", "sha256", strings.TrimPrefix(layer, "sha256:"))
				editFile(t, p, damage)
			}
			return "oci:" + lay + ":v1"
		}},
		{name: "oci-archive", make: func(t *testing.T, lay, layer string, damage func([]byte) []byte) string {
			a := filepath.Join(t.TempDir(), "img.oci.tar")
			ocitest.Skopeo(t, "copy", "oci:"+lay+":v1", "oci-archive:"+a+":v1")
			if damage != nil {
				editMember(t, a, "blobs/sha256/"+strings.TrimPrefix(layer, "sha256:"), damage)
			}
			return "oci-archive:" + a + ":v1"
		}},
		{name: "docker-archive", make: func(t *testing.T, lay, layer string, damage func([]byte) []byte) string {
			a := filepath.Join(t.TempDir(), "img.docker.tar")
			ocitest.Skopeo(t, "copy", "oci:"+lay+":v1", "docker-archive:"+a+":test/img:v1")
			if damage != nil {
				editMember(t, a, dockerLayerMember(t, a), damage)
			}
			return "docker-archive:" + a
		}, msg: map[string]string{"truncated": "blob does not match its digest: its sha256 is"}},
		{name: "registry", make: func(t *testing.T, lay, layer string, damage func([]byte) []byte) string {
			repo := "damage/" + strings.ReplaceAll(strings.ToLower(t.Name()[strings.LastIndex(t.Name(), "/")+1:]), "_", "-")
			ref := reg.Push(t, "oci:"+lay+":v1", repo+":v1")
			if damage != nil {
				editFile(t, reg.BlobPath(layer), damage)
			}
			return ref
		}, msg: map[string]string{
			"tampered":  "blob does not match its digest: the registry sent bytes whose sha256 is",
			"truncated": "blob does not match its digest: the registry serves",
		},
			// A cache of each build's own: the undamaged build's cache
			// holds the good blob, which the damaged build would read
			// instead of what the registry now serves.
			args: func(t *testing.T) []string { return []string{"--cache", t.TempDir()} }},
	}
	for _, src := range sources {
		if src.args == nil {
			src.args = func(*testing.T) []string { return nil }
		}
		for _, f := range faults {
			t.Run(src.name+"/"+f.name, func(t *testing.T) {
				// A layer of its own: a registry stores a blob once, for
				// every repository that holds it.
				good := layerTar(t, "etc/x", strings.Repeat(t.Name()+"\n", 200))
				lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
				m := lay.Image(ocitest.Image{DiffIDs: f.diffIDs, Layers: []ocitest.Layer{{Tar: good, Compression: "gzip"}}})
				lay.Tag("v1", m)
				lay.Close()
				layer := firstLayerDigest(t, lay, m)

				// The undamaged source builds: the damage is what fails.
				if f.damage != nil {
					ref := src.make(t, lay.Dir, layer, nil)
					out := filepath.Join(t.TempDir(), "out.img")
					if code, _, stderr := runCLI(t, append([]string{"image", "--image", ref, "--out", out}, src.args(t)...)...); code != 0 {
						t.Fatalf("undamaged %s: exit %d: %s", ref, code, stderr)
					}
				}
				ref := src.make(t, lay.Dir, layer, f.damage)
				dir := t.TempDir()
				code, stdout, stderr := runCLI(t, append([]string{"image", "--image", ref, "--out", filepath.Join(dir, "out.img")}, src.args(t)...)...)
				t.Logf("%s", strings.TrimSpace(stderr))
				want := f.msg
				if w, ok := src.msg[f.name]; ok {
					want = w
				}
				if code != 1 || stdout != "" || !strings.Contains(stderr, "layer 1 of 1") || !strings.Contains(stderr, want) {
					t.Errorf("exit %d, stdout %q; want 1, nothing, and an error naming layer 1 of 1 that says %q", code, stdout, want)
				}
				requireEmpty(t, dir)
			})
		}
	}
}

// firstLayerDigest is the digest of the first layer of the manifest m.
func firstLayerDigest(t *testing.T, lay *ocitest.Layout, m ocitest.Descriptor) string {
	t.Helper()
	b, err := os.ReadFile(lay.BlobPath(m))
	if err != nil {
		t.Fatal(err)
	}
	var man struct{ Layers []ocitest.Descriptor }
	if err := json.Unmarshal(b, &man); err != nil || len(man.Layers) == 0 {
		t.Fatalf("manifest %s: %v", b, err)
	}
	return man.Layers[0].Digest
}

// editFile replaces the file at p with edit of its bytes.
func editFile(t *testing.T, p string, edit func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// editMember rewrites the tar at p with the member called name replaced by
// edit of its bytes (its header's size follows).
func editMember(t *testing.T, p, name string, edit func([]byte) []byte) {
	t.Helper()
	in, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(in)), tar.NewWriter(&out)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			b, found = edit(b), true
			h.Size = int64(len(b))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("%s has no member %s", p, name)
	}
	if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dockerLayerMember is the member of the docker save archive at p that
// holds its first layer, as its manifest.json names it.
func dockerLayerMember(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no manifest.json: %v", p, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "manifest.json" {
			continue
		}
		var ms []struct{ Layers []string }
		if err := json.NewDecoder(tr).Decode(&ms); err != nil || len(ms) != 1 || len(ms[0].Layers) == 0 {
			t.Fatalf("%s: manifest.json: %v %+v", p, err, ms)
		}
		return ms[0].Layers[0]
	}
}
