package imagesrc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// dockerManifest is one entry of a `docker save` archive's manifest.json
// (the format docker load reads; go-containerregistry's tarball.Manifest
// describes the same).
type dockerManifest struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[v1.Hash]v1.Descriptor `json:",omitempty"`
}

// openDockerArchive reads a docker save (or podman save, or skopeo
// docker-archive:) tar. sel picks the image: a repo tag, or "@N" for
// the Nth of manifest.json; without it the archive must hold one image.
func openDockerArchive(file, sel string, want v1.Platform, explicit bool) (*Image, error) {
	if file == "" {
		return nil, errors.New("docker-archive: needs a file: docker-archive:FILE[:REF]")
	}
	s, err := openTarStore(file)
	if err != nil {
		return nil, fmt.Errorf("docker archive: %w", err)
	}
	im, err := readDockerArchive(s, sel, want, explicit)
	if err != nil {
		s.close()
		return nil, err
	}
	im.close = s.close
	return im, nil
}

func readDockerArchive(s *tarStore, sel string, want v1.Platform, explicit bool) (*Image, error) {
	rc, size, err := s.open("manifest.json")
	if err != nil {
		return nil, fmt.Errorf("not a docker save archive: %w", err)
	}
	raw, err := readBlob(rc, "manifest.json", size, v1.Hash{})
	if err != nil {
		return nil, err
	}
	var ms []dockerManifest
	if err := json.Unmarshal(raw, &ms); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	m, err := pickDockerImage(ms, sel)
	if err != nil {
		return nil, err
	}
	for diffID, d := range m.LayerSources {
		if err := supportedLayer(d.MediaType); err != nil {
			return nil, fmt.Errorf("layer %s: %w", short(diffID), err)
		}
	}

	cfgDigest := digestInName(m.Config)
	rc, size, err = s.open(m.Config)
	if err != nil {
		return nil, &Error{Layer: "config", Err: err}
	}
	rawConfig, cf, err := readConfig(rc, size, cfgDigest, len(m.Layers), want, explicit)
	if err != nil {
		return nil, err
	}
	im := &Image{RawConfig: rawConfig, Config: cf, Platform: platformOf(cf)}
	im.Digest = manifestDigestFor(s, cfgDigest)
	for i, p := range m.Layers {
		p := p
		im.Layers = append(im.Layers, Layer{
			Index: i, Count: len(m.Layers),
			// A member named by its digest (docker 25's OCI-shaped
			// archives, skopeo's) is checked by it too.
			Digest: digestInName(p), Size: -1, DiffID: cf.RootFS.DiffIDs[i],
			MediaType: types.DockerUncompressedLayer,
			open:      func(context.Context) (io.ReadCloser, int64, error) { return s.open(p) },
		})
	}
	return im, nil
}

// pickDockerImage chooses an entry of manifest.json.
func pickDockerImage(ms []dockerManifest, sel string) (dockerManifest, error) {
	var tags []string
	for _, m := range ms {
		tags = append(tags, m.RepoTags...)
	}
	list := strings.Join(tags, ", ")
	if list == "" {
		list = "no tags"
	}
	switch {
	case len(ms) == 0:
		return dockerManifest{}, errors.New("manifest.json lists no image")
	case strings.HasPrefix(sel, "@"):
		n, err := strconv.Atoi(sel[1:])
		if err != nil || n < 0 || n >= len(ms) {
			return dockerManifest{}, fmt.Errorf("%q: the archive holds images @0 to @%d", sel, len(ms)-1)
		}
		return ms[n], nil
	case sel != "":
		want, err := name.ParseReference(sel)
		if err != nil {
			return dockerManifest{}, fmt.Errorf("%q is not an image reference: %w", sel, err)
		}
		for _, m := range ms {
			for _, t := range m.RepoTags {
				if r, err := name.ParseReference(t); err == nil && r.Name() == want.Name() {
					return m, nil
				}
			}
		}
		return dockerManifest{}, fmt.Errorf("the archive has no image %s; it has: %s", sel, list)
	case len(ms) > 1:
		return dockerManifest{}, fmt.Errorf("the archive holds %d images; name one with :REF or :@N (it has: %s)", len(ms), list)
	}
	return ms[0], nil
}

// digestInName reads the sha256 a member's name carries: "blobs/sha256/HEX",
// "HEX.json", "HEX.tar" or "HEX/layer.tar" (a legacy layer id, which is
// not its digest, is not taken). Zero when it has none.
func digestInName(p string) v1.Hash {
	dir, base := path.Split(p)
	hex := strings.TrimSuffix(strings.TrimSuffix(base, ".json"), ".tar")
	if dir != "blobs/sha256/" && dir != "" {
		return v1.Hash{}
	}
	if len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return v1.Hash{}
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex}
}

// manifestDigestFor finds, in an archive that also is an OCI layout
// (docker 25 and later write both), the digest of the manifest whose
// config is cfg. Empty when there is none: a legacy archive has no
// manifest, only a config.
func manifestDigestFor(s *tarStore, cfg v1.Hash) string {
	if cfg.Hex == "" {
		return ""
	}
	rc, size, err := s.open("index.json")
	if err != nil {
		return ""
	}
	raw, err := readBlob(rc, "index.json", size, v1.Hash{})
	if err != nil {
		return ""
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	var walk func(ds []v1.Descriptor, depth int) string
	walk = func(ds []v1.Descriptor, depth int) string {
		for _, d := range ds {
			rc, size, err := s.open(path.Join("blobs", d.Digest.Algorithm, d.Digest.Hex))
			if err != nil || depth > 4 {
				continue
			}
			raw, err := readBlob(rc, "manifest", size, d.Digest)
			if err != nil {
				continue
			}
			if isIndex(mediaTypeOf(raw)) {
				if sub, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err == nil {
					if got := walk(sub.Manifests, depth+1); got != "" {
						return got
					}
				}
				continue
			}
			if m, err := v1.ParseManifest(bytes.NewReader(raw)); err == nil && m.Config.Digest == cfg {
				return d.Digest.String()
			}
		}
		return ""
	}
	return walk(idx.Manifests, 0)
}
