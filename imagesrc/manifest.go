package imagesrc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// blobOpener opens a blob by descriptor: it returns the raw stream and
// the size the source knows of (-1 if none). The caller verifies.
type blobOpener func(ctx context.Context, d v1.Descriptor) (io.ReadCloser, int64, error)

// isIndex reports whether a media type is a multi-platform index.
func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

// isManifest reports whether a media type is an image manifest.
func isManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// mediaTypeOf reads the mediaType field of a manifest or index that a
// descriptor did not type (an index.json entry may omit it).
func mediaTypeOf(raw []byte) types.MediaType {
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.Manifests != nil:
		return types.OCIImageIndex
	case m.Config != nil:
		return types.OCIManifestSchema1
	}
	return ""
}

// pickPlatform chooses the manifest for want from an index. The error
// lists the platforms the index has.
func pickPlatform(idx *v1.IndexManifest, want v1.Platform) (v1.Descriptor, error) {
	var have []string
	best, bestScore := -1, 0
	for i, d := range idx.Manifests {
		p := d.Platform
		if p == nil || p.OS == "unknown" || d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue // an attestation or a signature, not an image
		}
		have = append(have, p.String())
		if p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		// An exact variant wins; without a wanted variant, arm64's "v8"
		// or none at all is the plain one.
		score := 1
		switch {
		case p.Variant == want.Variant:
			score = 3
		case want.Variant == "" && (p.Variant == "v8" || p.Variant == ""):
			score = 2
		case want.Variant != "":
			continue
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		slices.Sort(have)
		have = slices.Compact(have)
		list := strings.Join(have, ", ")
		if list == "" {
			list = "none"
		}
		return v1.Descriptor{}, fmt.Errorf("the image index has no %s image; it has: %s (pick one with --platform)", want, list)
	}
	return idx.Manifests[best], nil
}

// checkConfigPlatform checks a single-platform image against an
// explicitly wanted platform.
func checkConfigPlatform(cf *v1.ConfigFile, want v1.Platform, explicit bool) error {
	if cf.OS != "linux" {
		os := cf.OS
		if os == "" {
			os = "no OS given"
		}
		return fmt.Errorf("it is a %s image; ext4pack builds Linux root disks only", os)
	}
	if explicit && cf.Architecture != want.Architecture {
		return fmt.Errorf("it is a %s/%s image, not %s", cf.OS, cf.Architecture, want)
	}
	return nil
}

// supportedLayer reports whether a layer media type is one tarflat reads,
// and explains why not.
func supportedLayer(mt types.MediaType) error {
	switch mt {
	case types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer,
		types.DockerLayer, types.DockerUncompressedLayer:
		return nil
	case types.DockerForeignLayer, types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return fmt.Errorf("a foreign (non-distributable) layer, %s, as Windows base images have; ext4pack builds Linux images from distributable layers only", mt)
	}
	return fmt.Errorf("layer media type %q is not a tar layer ext4pack reads (OCI or Docker tar, tar+gzip or tar+zstd)", mt)
}

// resolved is an image manifest and its config, read and checked.
type resolved struct {
	digest    string
	manifest  *v1.Manifest
	rawConfig []byte
	config    *v1.ConfigFile
}

// readImage reads and checks an image manifest and its config. raw is
// the manifest, already checked against its digest.
func readImage(ctx context.Context, raw []byte, digest string, open blobOpener, want v1.Platform, explicit bool) (*resolved, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the image manifest: %w", err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("a schema %d manifest; only schema 2 (Docker v2 and OCI) images are read", m.SchemaVersion)
	}
	switch mt := m.Config.MediaType; {
	case m.ArtifactType != "" && m.ArtifactType != string(types.OCIConfigJSON):
		return nil, fmt.Errorf("not a container image: an OCI artifact of type %s", m.ArtifactType)
	case mt == types.DockerPluginConfig:
		return nil, fmt.Errorf("not a container image: a Docker plugin (config %s)", mt)
	case mt != types.OCIConfigJSON && mt != types.DockerConfigJSON:
		return nil, fmt.Errorf("not a container image: its config is %s (an artifact, such as a Helm chart or a signature)", mt)
	}
	for _, l := range m.Layers {
		if err := supportedLayer(l.MediaType); err != nil {
			return nil, err
		}
	}
	rc, _, err := open(ctx, m.Config)
	if err != nil {
		return nil, &Error{Layer: "config", Err: err}
	}
	rawConfig, cf, err := readConfig(rc, m.Config.Size, m.Config.Digest, len(m.Layers), want, explicit)
	if err != nil {
		return nil, err
	}
	return &resolved{digest: digest, manifest: m, rawConfig: rawConfig, config: cf}, nil
}

// readConfig reads an image config blob, checked against its size and
// digest, parses it and checks it: a Linux image for the wanted
// platform, with a diff_id for each of its layers.
func readConfig(rc io.ReadCloser, size int64, digest v1.Hash, layers int, want v1.Platform, explicit bool) ([]byte, *v1.ConfigFile, error) {
	raw, err := readBlob(rc, "config", size, digest)
	if err != nil {
		return nil, nil, err
	}
	cf, err := parseConfig(raw, layers)
	if err != nil {
		return nil, nil, err
	}
	if err := checkConfigPlatform(cf, want, explicit); err != nil {
		return nil, nil, err
	}
	return raw, cf, nil
}

// parseConfig parses an image config and checks that its diff_ids
// match the layer count.
func parseConfig(raw []byte, layers int) (*v1.ConfigFile, error) {
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, &Error{Layer: "config", Err: err}
	}
	if cf.RootFS.Type != "layers" {
		return nil, &Error{Layer: "config", Err: fmt.Errorf("rootfs type %q, not \"layers\"", cf.RootFS.Type)}
	}
	if len(cf.RootFS.DiffIDs) != layers {
		return nil, &Error{Layer: "config", Err: fmt.Errorf("it lists %d diff_ids for %d layers", len(cf.RootFS.DiffIDs), layers)}
	}
	return cf, nil
}

// image builds the Image of a resolved manifest whose blobs open opens.
func (r *resolved) image(open blobOpener) *Image {
	im := &Image{Digest: r.digest, RawConfig: r.rawConfig, Config: r.config, Platform: platformOf(r.config)}
	for i, d := range r.manifest.Layers {
		d := d
		im.Layers = append(im.Layers, Layer{
			Index: i, Count: len(r.manifest.Layers),
			Digest: d.Digest, Size: d.Size, DiffID: r.config.RootFS.DiffIDs[i], MediaType: d.MediaType,
			open: func(ctx context.Context) (io.ReadCloser, int64, error) { return open(ctx, d) },
		})
	}
	return im
}

func platformOf(cf *v1.ConfigFile) v1.Platform {
	return v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
}
