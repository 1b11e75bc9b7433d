package boottest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/ocitest"
)

// Paths the layered boot's upper layers delete and add, so that the
// host can check them in the image as well as the guest booting it.
var (
	layerDeleted = []string{"usr/share/doc", "var/lib/apt/lists"}
	layerAdded   = []string{"opt/layer2/hello", "etc/layer3.conf"}
)

// layeredLayout turns the test rootfs tar into a three-layer OCI image,
// as a Dockerfile would build it: the whole rootfs as the base layer
// (plain, as docker save keeps them), a gzip layer that deletes
// /usr/share/doc and /var/lib/apt/lists and adds a file, and a zstd
// config layer. It returns the image's reference for --image.
func layeredLayout(t *testing.T, rootfsTar, dir string) string {
	base, err := os.ReadFile(rootfsTar)
	if err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	layer := func(entries ...tar.Header) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range entries {
			h.ModTime = mtime
			data := []byte(nil)
			if h.Typeflag == tar.TypeReg {
				data = []byte(fmt.Sprintf("written by the %s entry\n", h.Name))
				if h.Size < 0 { // a whiteout: empty
					data = nil
				}
				h.Size = int64(len(data))
			}
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(data); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	whiteout := func(name string) tar.Header {
		return tar.Header{Name: filepath.Dir(name) + "/.wh." + filepath.Base(name), Typeflag: tar.TypeReg, Mode: 0o644, Size: -1}
	}
	cleanup := layer(whiteout(layerDeleted[0]), whiteout(layerDeleted[1]),
		tar.Header{Name: "opt/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "opt/layer2/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: layerAdded[0], Typeflag: tar.TypeReg, Mode: 0o644})
	config := layer(tar.Header{Name: layerAdded[1], Typeflag: tar.TypeReg, Mode: 0o640, Gid: 4})
	lay := ocitest.NewLayout(t, filepath.Join(dir, "layout"))
	lay.Tag("bookworm", lay.Image(ocitest.Image{
		Layers: []ocitest.Layer{{Tar: base}, {Tar: cleanup, Compression: "gzip"}, {Tar: config, Compression: "zstd"}},
		Config: map[string]any{"Cmd": []string{"/bin/bash"}, "Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	}))
	lay.Close()
	return "oci:" + lay.Dir + ":bookworm"
}
