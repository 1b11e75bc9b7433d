package imagesrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// store is where an OCI image layout's files are: a directory, or the
// members of a tar (image-spec, image-layout.md).
type store interface {
	// open opens the file at name, a slash-separated path relative to
	// the layout's root, and returns its size.
	open(name string) (io.ReadCloser, int64, error)
	close() error
}

// dirStore is a layout directory.
type dirStore struct{ dir string }

func (s dirStore) open(name string) (io.ReadCloser, int64, error) {
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(name)))
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", name)
	}
	return f, st.Size(), nil
}

func (dirStore) close() error { return nil }

// refNameAnnotation names an index.json entry (image-spec, annotations.md).
const refNameAnnotation = "org.opencontainers.image.ref.name"

func openLayoutDir(dir, tag string, want v1.Platform, explicit bool) (*Image, error) {
	if dir == "" {
		return nil, errors.New("oci: needs a directory: oci:DIR[:TAG]")
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("OCI layout: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("OCI layout %s is not a directory (for a tar of a layout, use oci-archive:)", dir)
	}
	return openLayout(dirStore{dir}, tag, want, explicit)
}

func openLayoutArchive(file, tag string, want v1.Platform, explicit bool) (*Image, error) {
	if file == "" {
		return nil, errors.New("oci-archive: needs a file: oci-archive:FILE[:TAG]")
	}
	s, err := openTarStore(file)
	if err != nil {
		return nil, fmt.Errorf("OCI archive: %w", err)
	}
	im, err := openLayout(s, tag, want, explicit)
	if err != nil {
		s.close()
		return nil, err
	}
	return im, nil
}

// openLayout reads an OCI layout's index.json, picks the image by tag and
// platform, and reads its manifest and config.
func openLayout(s store, tag string, want v1.Platform, explicit bool) (*Image, error) {
	if rc, _, err := s.open("oci-layout"); err == nil {
		rc.Close()
	} else if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("not an OCI image layout: it has no oci-layout file")
	}
	rc, size, err := s.open("index.json")
	if err != nil {
		return nil, fmt.Errorf("not an OCI image layout: %w", err)
	}
	raw, err := readBlob(rc, "index.json", size, v1.Hash{})
	if err != nil {
		return nil, err
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	d, err := pickTag(idx, tag)
	if err != nil {
		return nil, err
	}
	open := func(_ context.Context, d v1.Descriptor) (io.ReadCloser, int64, error) {
		if d.Digest.Algorithm != "sha256" || len(d.Digest.Hex) != 64 {
			return nil, 0, fmt.Errorf("digest %s: only sha256 blobs are read", d.Digest)
		}
		if len(d.URLs) > 0 {
			return nil, 0, fmt.Errorf("blob %s lives at %s, outside the layout (a foreign layer)", d.Digest, d.URLs[0])
		}
		rc, size, err := s.open(path.Join("blobs", d.Digest.Algorithm, d.Digest.Hex))
		if err != nil {
			return nil, 0, fmt.Errorf("blob %s: %w", short(d.Digest), err)
		}
		return rc, size, nil
	}
	im, err := resolve(context.Background(), d, open, want, explicit)
	if err != nil {
		return nil, err
	}
	im.close = s.close
	return im, nil
}

// pickTag chooses the index.json entry named tag, or the only one.
func pickTag(idx *v1.IndexManifest, tag string) (v1.Descriptor, error) {
	var names []string
	for _, d := range idx.Manifests {
		n := d.Annotations[refNameAnnotation]
		names = append(names, n)
		if tag == "" {
			continue
		}
		// skopeo and umoci store the tag; BuildKit may store a whole
		// reference ("docker.io/library/alpine:3.20"): either matches.
		if n == tag || strings.HasSuffix(n, ":"+tag) && !strings.Contains(tag, ":") {
			return d, nil
		}
	}
	switch {
	case len(idx.Manifests) == 0:
		return v1.Descriptor{}, errors.New("the layout's index.json lists no image")
	case tag != "":
		return v1.Descriptor{}, fmt.Errorf("the layout has no image tagged %q; it has: %s", tag, listNames(names))
	case len(idx.Manifests) > 1:
		return v1.Descriptor{}, fmt.Errorf("the layout holds %d images; name one with :TAG (it has: %s)", len(idx.Manifests), listNames(names))
	}
	return idx.Manifests[0], nil
}

func listNames(names []string) string {
	var out []string
	for _, n := range names {
		if n == "" {
			n = "(untagged)"
		}
		out = append(out, n)
	}
	return strings.Join(out, ", ")
}

// resolve follows a descriptor to an image: through an index, by
// platform, to a manifest, whose config it reads.
func resolve(ctx context.Context, d v1.Descriptor, open blobOpener, want v1.Platform, explicit bool) (*Image, error) {
	for depth := 0; ; depth++ {
		if depth > 4 {
			return nil, errors.New("indexes nested more than 4 deep")
		}
		rc, _, err := open(ctx, d)
		if err != nil {
			return nil, &Error{Layer: "manifest", Err: err}
		}
		raw, err := readBlob(rc, "manifest", d.Size, d.Digest)
		if err != nil {
			return nil, err
		}
		mt := d.MediaType
		if mt == "" {
			mt = mediaTypeOf(raw)
		}
		switch {
		case isIndex(mt):
			idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
			if err != nil {
				return nil, fmt.Errorf("the image index: %w", err)
			}
			if d, err = pickPlatform(idx, want); err != nil {
				return nil, err
			}
			explicit = true
		case isManifest(mt):
			r, err := readImage(ctx, raw, d.Digest.String(), open, want, explicit)
			if err != nil {
				return nil, err
			}
			return r.image(open), nil
		case mt == types.DockerManifestSchema1 || mt == types.DockerManifestSchema1Signed:
			return nil, fmt.Errorf("a Docker schema 1 manifest (%s), deprecated since 2017; only schema 2 and OCI images are read", mt)
		default:
			return nil, fmt.Errorf("not a container image: its manifest is %s", mt)
		}
	}
}
