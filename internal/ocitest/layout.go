// Package ocitest makes container images for ext4pack's tests, and the
// reference their images are judged against: each layer extracted the
// way containerd extracts one for its overlayfs snapshotter, and the
// kernel's overlayfs mounted over them. It is written from the OCI
// image-spec and the overlayfs documentation, independently of tarflat
// and ext4w, so that a shared misreading cannot make the code and its
// judge agree. Real tools make images too (umoci, skopeo) and a real
// registry serves them (distribution's docker-registry).
//
// The package is imported only by tests.
package ocitest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// Media types (OCI image-spec, media-types.md).
const (
	MediaManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaIndex    = "application/vnd.oci.image.index.v1+json"
	MediaConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTar      = "application/vnd.oci.image.layer.v1.tar"
	MediaTarGzip  = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTarZstd  = "application/vnd.oci.image.layer.v1.tar+zstd"
)

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *Platform         `json:"platform,omitempty"`
}

// Platform is a descriptor's platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// Layer is one layer of an Image: a plain tar, and how to store it.
type Layer struct {
	Tar []byte
	// Compression is "", "gzip" or "zstd".
	Compression string
	// MediaType overrides the media type that Compression implies.
	MediaType string
	// URLs makes it a foreign layer's descriptor.
	URLs []string
}

// Image describes an image to write.
type Image struct {
	Layers []Layer
	// OS and Arch default to linux and amd64.
	OS, Arch, Variant string
	// Config is the config's "config" object (Entrypoint, Cmd, ...).
	Config map[string]any
	// ConfigMediaType and ArtifactType override the manifest's, for
	// manifests that are not container images.
	ConfigMediaType, ArtifactType string
	// DiffIDs overrides the config's diff_ids.
	DiffIDs []string
}

// Layout writes an OCI image layout directory.
type Layout struct {
	t    testing.TB
	Dir  string
	tags []Descriptor
}

// NewLayout starts a layout in dir.
func NewLayout(t testing.TB, dir string) *Layout {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &Layout{t: t, Dir: dir}
}

// Blob stores b and returns its descriptor.
func (l *Layout) Blob(mediaType string, b []byte) Descriptor {
	l.t.Helper()
	sum := sha256.Sum256(b)
	d := Descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
	if err := os.WriteFile(l.BlobPath(d), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return d
}

// BlobPath is where d's blob lives.
func (l *Layout) BlobPath(d Descriptor) string {
	return filepath.Join(l.Dir, "blobs", "sha256", d.Digest[len("sha256:"):])
}

// JSON stores v as a JSON blob.
func (l *Layout) JSON(mediaType string, v any) Descriptor {
	l.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.Blob(mediaType, b)
}

// Image stores img's layers, config and manifest, and returns the
// manifest's descriptor, its platform set.
func (l *Layout) Image(img Image) Descriptor {
	l.t.Helper()
	os, arch := img.OS, img.Arch
	if os == "" {
		os = "linux"
	}
	if arch == "" {
		arch = "amd64"
	}
	var layers []Descriptor
	var diffIDs []string
	for _, ly := range img.Layers {
		sum := sha256.Sum256(ly.Tar)
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(sum[:]))
		mt, blob := MediaTar, ly.Tar
		switch ly.Compression {
		case "gzip":
			mt, blob = MediaTarGzip, oracle.Gzip(l.t, ly.Tar)
		case "zstd":
			mt, blob = MediaTarZstd, oracle.Zstd(l.t, ly.Tar)
		}
		if ly.MediaType != "" {
			mt = ly.MediaType
		}
		d := l.Blob(mt, blob)
		d.URLs = ly.URLs
		layers = append(layers, d)
	}
	if img.DiffIDs != nil {
		diffIDs = img.DiffIDs
	}
	cfg := map[string]any{
		"architecture": arch, "os": os,
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	}
	if img.Variant != "" {
		cfg["variant"] = img.Variant
	}
	if img.Config != nil {
		cfg["config"] = img.Config
	}
	cmt := MediaConfig
	if img.ConfigMediaType != "" {
		cmt = img.ConfigMediaType
	}
	config := l.JSON(cmt, cfg)
	m := map[string]any{"schemaVersion": 2, "mediaType": MediaManifest, "config": config, "layers": layers}
	if img.ArtifactType != "" {
		m["artifactType"] = img.ArtifactType
	}
	d := l.JSON(MediaManifest, m)
	d.Platform = &Platform{OS: os, Architecture: arch, Variant: img.Variant}
	return d
}

// Index stores an image index of manifests and returns its descriptor.
func (l *Layout) Index(manifests ...Descriptor) Descriptor {
	l.t.Helper()
	return l.JSON(MediaIndex, map[string]any{"schemaVersion": 2, "mediaType": MediaIndex, "manifests": manifests})
}

// Tag names d in index.json.
func (l *Layout) Tag(tag string, d Descriptor) {
	d.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	d.Platform = nil
	l.tags = append(l.tags, d)
}

// Close writes index.json and oci-layout.
func (l *Layout) Close() {
	l.t.Helper()
	idx, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": l.tags})
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "index.json"), idx, 0o644); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		l.t.Fatal(err)
	}
}
