// Package imagesrc reads container images: from a registry, an OCI image
// layout (a directory, or a tar of one) or a `docker save` archive. A
// reference goes in; the image's config and its layers come out, oldest
// first, each layer a stream of its raw blob that checks the blob's size
// and digest as it is read. Nothing is extracted and no layer is held in
// memory. It knows nothing about ext4: tarflat decodes the layers.
//
// A registry's blobs go through a blobstore (a cache kept between runs,
// or a spool removed at Close): the layers download in parallel, big
// blobs in several ranges at once, resumed where a connection broke, and
// each layer streams to the build from its download file as it grows
// (fetch.go). Options.Pull says when the registry is asked at all.
//
// References, the registry protocol, authentication (the default
// keychain: ~/.docker/config.json with its credential helpers,
// $DOCKER_CONFIG, $REGISTRY_AUTH_FILE, podman's auth.json) and the
// image-spec types are github.com/google/go-containerregistry's. The
// layouts and archives are read here, since go-containerregistry reads
// no OCI archive and checks no digest of a layout's blobs.
package imagesrc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ext4pack/ext4pack/blobstore"
)

// Image is a container image ready to be read, layer by layer.
type Image struct {
	// Ref is the reference as given.
	Ref string
	// Digest is the digest of the image manifest ("sha256:..."), empty
	// for a legacy `docker save` archive, which holds no manifest.
	Digest string
	// Platform is the config's os/arch[/variant].
	Platform v1.Platform
	// RawConfig is the config blob, verbatim; Config is it parsed.
	RawConfig []byte
	Config    *v1.ConfigFile
	// Layers are the layers, oldest (the base) first.
	Layers []Layer

	close func() error
	fetch *fetcher // a registry's downloads; nil for other sources
}

// Fetched says how many bytes of the layers have been downloaded so far
// and how many are to be, the cached blobs not counted. Both are 0 for a
// source other than a registry, and for an image wholly in the cache.
func (im *Image) Fetched() (done, total int64) {
	if im.fetch == nil {
		return 0, 0
	}
	return im.fetch.progress()
}

// Close releases what the source holds open (an archive's file).
func (im *Image) Close() error {
	if im.close == nil {
		return nil
	}
	c := im.close
	im.close = nil
	return c()
}

// ContainerConfig returns the config's "config" object (Entrypoint, Cmd,
// Env, WorkingDir, User, ...) verbatim, or nil when the config has none.
func (im *Image) ContainerConfig() (json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(im.RawConfig, &top); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	c := top["config"]
	if len(c) == 0 || string(c) == "null" {
		return nil, nil
	}
	return c, nil
}

// Layer is one layer of an Image.
type Layer struct {
	// Index is the layer's place, 0 for the base layer, and Count how
	// many the image has: messages say "layer 2 of 3".
	Index, Count int
	// Digest and Size are the blob's, as the manifest gives them. A
	// legacy `docker save` archive names no digest for its layers: Digest
	// is then zero, and only DiffID checks the layer.
	Digest v1.Hash
	Size   int64
	// DiffID is the digest of the uncompressed layer tar, from the config.
	DiffID    v1.Hash
	MediaType types.MediaType

	open func(ctx context.Context) (io.ReadCloser, int64, error)
	// checked says that what open returns checks the blob's size and
	// digest itself (a registry's blob, hashed as it lands).
	checked bool
}

// String names the layer for messages: "layer 2 of 3 (sha256:0123456789ab)".
func (l Layer) String() string {
	d := l.Digest
	if d.Hex == "" {
		d = l.DiffID
	}
	return fmt.Sprintf("layer %d of %d (%s)", l.Index+1, l.Count, short(d))
}

// short abbreviates a digest to its first 12 hex digits, as docker does.
func short(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Algorithm + ":" + h.Hex[:12]
	}
	return h.String()
}

// Open returns the layer's raw blob (gzip, zstd or plain tar). Read to
// its end, it checks the blob's size and digest: a Read returns an
// *Error instead of io.EOF when they differ from the manifest's, and as
// soon as more bytes come than the manifest says.
func (l Layer) Open(ctx context.Context) (io.ReadCloser, error) {
	rc, size, err := l.open(ctx)
	if err != nil {
		return nil, &Error{Layer: l.String(), Err: err}
	}
	if l.checked {
		return rc, nil
	}
	want := l.Size
	if want < 0 {
		want = size
	}
	// The blob is read, and hashed, on a goroutine of its own, ahead of
	// the decoding: on two cores, checking the digest then costs the
	// pipeline a copy, and a registry's download runs beside the build.
	return readAhead(newVerifier(rc, l.String(), want, l.Digest)), nil
}

// Options configure Open. The fields after UserAgent are a registry's:
// other sources are local files, neither fetched nor cached.
type Options struct {
	// Platform picks the image from a multi-platform index:
	// "os/arch[/variant]". Empty: linux and Arch, else the host's arch.
	Platform string
	// Arch is the architecture the caller wants ("amd64", "arm64",
	// "x86_64", "aarch64"), used for the default platform. Empty: the
	// host's.
	Arch string
	// Transport replaces the HTTP transport for registries (tests).
	Transport http.RoundTripper
	// UserAgent is sent to registries.
	UserAgent string

	// Cache keeps a registry's blobs (manifests, configs, layers) by
	// digest, to be read instead of fetched. Nil: they are spooled to a
	// temporary store in SpoolDir, removed by Close.
	Cache *blobstore.Store
	// SpoolDir is where the spool goes without a Cache. Empty: the
	// system's temporary directory.
	SpoolDir string
	// Pull says when the registry is asked. Default: PullMissing.
	Pull PullPolicy
	// Jobs bounds the connections to the registry, 1 to 64. 0: 6.
	Jobs int
	// StallTimeout is how long a blob's connection may bring no byte
	// before it is dropped and the blob resumed on a new one. 0: 30 s.
	StallTimeout time.Duration
	// PieceSize is the size of the ranges a big blob is fetched in, at
	// least 64 KiB: a blob over twice this size is fetched as several
	// Range requests at once. 0: 16 MiB.
	PieceSize int64
	// Tries is how many times in a row a blob's download may fail
	// without bringing a byte before Open's layers fail; a failure that
	// brought bytes is resumed at once and starts the count again. 0: 5.
	Tries int
	// Backoff is the wait after a blob's first failure without progress,
	// doubled after each further one. 0: 250 ms (then 0.5, 1, 2 s).
	Backoff time.Duration
	// Warn receives warnings (a corrupt cached blob fetched again), one
	// line each. Nil: dropped.
	Warn func(msg string)
}

// Open resolves ref and reads the image's manifest and config. ref is
// one of:
//
//	docker://HOST/REPO[:TAG|@DIGEST], or a bare reference  a registry
//	oci:DIR[:TAG]                                          an OCI layout directory
//	oci-archive:FILE[:TAG]                                 a tar of an OCI layout
//	docker-archive:FILE[:REF]                              docker save / podman save output
//
// The layers are read later, through Layer.Open. A registry's layers
// start downloading at once, in the background, several at a time, into
// o.Cache (or a spool): Layer.Open streams a layer as it arrives, and
// Close stops what is still under way. Close the Image when done.
func Open(ctx context.Context, ref string, o Options) (*Image, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("imagesrc: %w", err)
	}
	want, explicit, err := wantPlatform(o)
	if err != nil {
		return nil, err
	}
	transport, rest, _ := strings.Cut(ref, ":")
	var im *Image
	switch {
	case transport == "oci":
		dir, tag := splitRef(rest)
		im, err = openLayoutDir(dir, tag, want, explicit)
	case transport == "oci-archive":
		file, tag := splitRef(rest)
		im, err = openLayoutArchive(file, tag, want, explicit)
	case transport == "docker-archive":
		file, sel := splitRef(rest)
		im, err = openDockerArchive(file, sel, want, explicit)
	case IsRegistry(ref):
		im, err = openRegistry(ctx, strings.TrimPrefix(ref, "docker://"), want, explicit, o)
	default:
		return nil, fmt.Errorf("image %q: unknown transport %q (use docker://, oci:, oci-archive: or docker-archive:, or a bare reference such as alpine:3.20)", ref, transport+":")
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	im.Ref = ref
	return im, nil
}

// IsRegistry reports whether Open reads ref from a registry: docker://,
// or a bare reference (alpine:3.20, ghcr.io/o/r@sha256:...). Only a
// registry's blobs are fetched and cached.
func IsRegistry(ref string) bool {
	if strings.HasPrefix(ref, "docker://") {
		return true
	}
	transport, _, _ := strings.Cut(ref, ":")
	switch transport {
	case "oci", "oci-archive", "docker-archive":
		return false
	}
	return strings.Contains(transport, "/") || !strings.Contains(ref, "://") && !knownTransportLike(transport)
}

// knownTransportLike tells a transport-like prefix that ext4pack does
// not read ("dir:", "containers-storage:") from the host:port or
// name:tag of a bare reference, which parse as references.
func knownTransportLike(s string) bool {
	switch s {
	case "dir", "containers-storage", "docker-daemon", "ostree", "sif", "tarball":
		return true
	}
	return false
}

// splitRef splits "PATH[:REF]" at its first colon, as skopeo does: a
// layout's path cannot hold one.
func splitRef(s string) (path, ref string) {
	path, ref, _ = strings.Cut(s, ":")
	return path, ref
}

// wantPlatform is the platform to pick from an index, and whether the
// user asked for it (a single-platform image that contradicts an explicit
// platform or arch is an error; else it is taken as it is).
func wantPlatform(o Options) (v1.Platform, bool, error) {
	if o.Platform != "" {
		p, err := v1.ParsePlatform(o.Platform)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return v1.Platform{}, false, fmt.Errorf("--platform %q: use os/arch[/variant], such as linux/arm64", o.Platform)
		}
		p.Architecture = goArch(p.Architecture)
		if o.Arch != "" && goArch(o.Arch) != p.Architecture {
			return v1.Platform{}, false, fmt.Errorf("--platform %s contradicts --arch %s", o.Platform, o.Arch)
		}
		return *p, true, nil
	}
	if o.Arch != "" {
		return v1.Platform{OS: "linux", Architecture: goArch(o.Arch)}, true, nil
	}
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, false, nil
}

// goArch maps uname's names to the image-spec's (GOARCH values).
func goArch(a string) string {
	switch a {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return a
}

// Error is an error about one blob of the image.
type Error struct {
	Layer string // "layer 2 of 3 (sha256:...)", or "config", "manifest"
	Err   error
}

func (e *Error) Error() string { return e.Layer + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ErrDigest marks a blob whose bytes do not match its digest or size.
var ErrDigest = errors.New("imagesrc: blob does not match its digest")
