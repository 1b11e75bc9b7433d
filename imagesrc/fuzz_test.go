package imagesrc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzLayout feeds Open an OCI layout whose index.json, manifest and
// config are the fuzzer's: it must answer with an image or an error,
// never panic, and never read more than the blobs hold.
func FuzzLayout(f *testing.F) {
	cfg := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:` + hex.EncodeToString(make([]byte, 32)) + `"]}}`
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"MANIFEST","size":SIZE}]}`),
		[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"CONFIG","size":CSIZE},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:`+hex.EncodeToString(make([]byte, 32))+`","size":1024}]}`),
		[]byte(cfg))
	f.Add([]byte(`{"manifests":[{"digest":"MANIFEST","size":SIZE}]}`), []byte(`{"manifests":[{"digest":"MANIFEST","size":SIZE,"platform":{"os":"linux","architecture":"amd64"}}]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, index, manifest, config []byte) {
		dir := t.TempDir()
		blobs := filepath.Join(dir, "blobs", "sha256")
		os.MkdirAll(blobs, 0o755)
		put := func(b []byte) string {
			s := sha256.Sum256(b)
			h := hex.EncodeToString(s[:])
			os.WriteFile(filepath.Join(blobs, h), b, 0o644)
			return "sha256:" + h
		}
		cd := put(config)
		manifest = replaceAll(manifest, "CONFIG", cd, "CSIZE", len(config))
		md := put(manifest)
		index = replaceAll(index, "MANIFEST", md, "SIZE", len(manifest))
		os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644)
		os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
		im, err := Open(context.Background(), "oci:"+dir, Options{Arch: "amd64"})
		if err != nil {
			return
		}
		defer im.Close()
		for _, l := range im.Layers {
			if rc, err := l.Open(context.Background()); err == nil {
				Finish(rc)
				rc.Close()
			}
		}
		im.ContainerConfig()
	})
}

func replaceAll(b []byte, digestKey, digest, sizeKey string, size int) []byte {
	s := strings.ReplaceAll(string(b), digestKey, digest)
	return []byte(strings.ReplaceAll(s, sizeKey, strconv.Itoa(size)))
}
