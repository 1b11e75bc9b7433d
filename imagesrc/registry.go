package imagesrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ext4pack/ext4pack/blobstore"
)

// retryBackoff is how a registry that does not answer is retried: three
// tries over about four seconds, as go-containerregistry's default, but
// for refused connections and failed lookups too (a registry starting,
// a flaky resolver).
var retryBackoff = remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 3}

func retryable(err error) bool {
	var dns *net.DNSError
	var te interface{ Temporary() bool }
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &dns):
		return dns.IsTemporary || dns.IsTimeout
	case errors.As(err, &te):
		return te.Temporary()
	}
	return false
}

// tries counts the attempts go-containerregistry's retry layer, which
// wraps it, makes of each request, so that an error says how many were
// made and over how long, not what the backoff would allow.
type tries struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int // attempts by method and URL
	max  int            // the most attempts of one request
	span time.Duration  // from that request's first attempt to its last
	at   map[string]time.Time
}

func (c *tries) RoundTrip(r *http.Request) (*http.Response, error) {
	k := r.Method + " " + r.URL.String()
	now := time.Now()
	c.mu.Lock()
	if c.n == nil {
		c.n, c.at = map[string]int{}, map[string]time.Time{}
	}
	c.n[k]++
	if c.n[k] == 1 {
		c.at[k] = now
	}
	if c.n[k] > c.max {
		c.max, c.span = c.n[k], now.Sub(c.at[k])
	}
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

// String says how often the most tried request was tried.
func (c *tries) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max == 1 {
		return "tried once"
	}
	return fmt.Sprintf("tried %d times over %.1f s", c.max, c.span.Seconds())
}

// registry is one repository of a registry, with the cache in front of
// it: manifests and configs are read from the cache when it has them,
// else fetched and put in it.
type registry struct {
	ref   name.Reference
	o     Options
	store *blobstore.Store
	base  http.RoundTripper // shared by the manifests' puller and the blobs' client
	count *tries            // the manifests' requests, for messages
	p     *remote.Puller    // made at first use: a cached image asks nothing
	small []v1.Hash         // the manifests and config read, touched again at the end
}

func openRegistry(ctx context.Context, s string, want v1.Platform, explicit bool, o Options) (*Image, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an image reference: %w", s, err)
	}
	store, spool, err := o.store()
	if err != nil {
		return nil, err
	}
	r := &registry{ref: ref, o: o, store: store, base: o.baseTransport()}
	r.count = &tries{next: r.base}
	im, err := r.open(ctx, want, explicit)
	if err != nil {
		if spool != "" {
			os.RemoveAll(spool)
		}
		return nil, err
	}
	f, err := startFetch(ctx, r, im, spool)
	if err != nil {
		return nil, err // startFetch removed the spool
	}
	im.fetch = f
	im.close = f.close
	return im, nil
}

// store is the cache, or a new spool (a store in a temporary directory
// that Close removes) without one.
func (o Options) store() (*blobstore.Store, string, error) {
	if o.Cache != nil {
		return o.Cache, "", nil
	}
	if o.Pull == PullNever {
		return nil, "", errors.New("pull policy never needs the cache: without one, nothing can be read")
	}
	dir, err := os.MkdirTemp(o.SpoolDir, "ext4pack-spool-")
	if err != nil {
		return nil, "", fmt.Errorf("the download spool: %w", err)
	}
	// The spool holds one image, whatever its size: no eviction.
	s, err := blobstore.Open(dir, blobstore.WithMaxSize(1<<62))
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return s, dir, nil
}

// baseTransport is the HTTP transport under the registry's
// authentication: Jobs connections at most, all of them kept alive
// between requests (net/http keeps 2 by default).
func (o Options) baseTransport() http.RoundTripper {
	if o.Transport != nil {
		return o.Transport
	}
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost = o.jobs()
	t.MaxIdleConnsPerHost = o.jobs()
	return t
}

// puller is go-containerregistry's client for manifests, made once.
func (r *registry) puller() (*remote.Puller, error) {
	if r.p != nil {
		return r.p, nil
	}
	opts := []remote.Option{
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithRetryBackoff(retryBackoff),
		remote.WithRetryPredicate(retryable),
		remote.WithTransport(r.count),
	}
	if r.o.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(r.o.UserAgent))
	}
	p, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, err
	}
	r.p = p
	return p, nil
}

// cacheName is the name under which the cache keeps what a tag pointed
// at: the reference in full ("index.docker.io/library/alpine:3.20").
func (r *registry) cacheName() string { return "tag " + r.ref.Name() }

// open resolves the reference to an image: through the cache where the
// pull policy allows, else at the registry.
func (r *registry) open(ctx context.Context, want v1.Platform, explicit bool) (*Image, error) {
	top, raw, err := r.top(ctx)
	if err != nil {
		return nil, err
	}
	open := func(ctx context.Context, d v1.Descriptor) (io.ReadCloser, int64, error) {
		if raw != nil && d.Digest == top.Digest {
			return io.NopCloser(bytes.NewReader(raw)), int64(len(raw)), nil
		}
		return r.openSmall(ctx, d)
	}
	r.small = append(r.small, top.Digest)
	im, err := resolve(ctx, top, open, want, explicit)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		// Fetched from the registry, and read through: keep it for the
		// next PullMissing. Failing to is no reason to fail the build.
		if r.putSmall(top.Digest, raw) == nil {
			if _, isTag := r.ref.(name.Tag); isTag {
				_ = r.store.SetName(r.cacheName(), blobstore.Digest(top.Digest.String()))
			}
		}
	}
	return im, nil
}

// top is the descriptor the reference names: a digest as it is, a tag
// through the cache (PullMissing, PullNever) or the registry. raw is the
// manifest when the registry was asked for it.
func (r *registry) top(ctx context.Context) (v1.Descriptor, []byte, error) {
	if dg, ok := r.ref.(name.Digest); ok {
		h, err := v1.NewHash(dg.DigestStr())
		if err != nil {
			return v1.Descriptor{}, nil, err
		}
		// Size -1: the cache's file or the registry's answer, checked
		// against the digest.
		return v1.Descriptor{Digest: h, Size: -1}, nil, nil
	}
	if r.o.Pull != PullAlways {
		d, err := r.store.Lookup(r.cacheName())
		if err == nil {
			if h, err := v1.NewHash(d.String()); err == nil {
				c, err := r.store.ReaderAt(d)
				if err == nil {
					c.Close()
				}
				if err == nil || r.o.Pull == PullNever {
					return v1.Descriptor{Digest: h, Size: -1}, nil, nil
				}
			}
		}
		if r.o.Pull == PullNever {
			return v1.Descriptor{}, nil, fmt.Errorf("the cache (%s) has no manifest for %s, and the pull policy never asks the registry", r.store.Dir(), r.ref.Name())
		}
	}
	p, err := r.puller()
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	desc, err := p.Get(ctx, r.ref)
	if err != nil {
		return v1.Descriptor{}, nil, registryError(r.ref, r.count, err)
	}
	return desc.Descriptor, desc.Manifest, nil
}

// openSmall opens a manifest, an index or a config: from the cache, else
// from the registry, putting it in the cache. The caller checks it.
func (r *registry) openSmall(ctx context.Context, d v1.Descriptor) (io.ReadCloser, int64, error) {
	if len(d.URLs) > 0 {
		return nil, 0, fmt.Errorf("blob %s lives at %s, outside the registry (a foreign layer)", short(d.Digest), d.URLs[0])
	}
	r.small = append(r.small, d.Digest)
	if c, err := r.store.ReaderAt(blobstore.Digest(d.Digest.String())); err == nil {
		return readerAtCloser{io.NewSectionReader(c, 0, c.Size()), c}, c.Size(), nil
	}
	if r.o.Pull == PullNever {
		return nil, 0, fmt.Errorf("blob %s is not in the cache (%s), and the pull policy never asks the registry", d.Digest, r.store.Dir())
	}
	p, err := r.puller()
	if err != nil {
		return nil, 0, err
	}
	var raw []byte
	if d.MediaType == "" || isIndex(d.MediaType) || isManifest(d.MediaType) {
		sub, err := p.Get(ctx, r.ref.Context().Digest(d.Digest.String()))
		if err != nil {
			return nil, 0, registryError(r.ref, r.count, err)
		}
		raw = sub.Manifest
	} else {
		l, err := p.Layer(ctx, r.ref.Context().Digest(d.Digest.String()))
		if err != nil {
			return nil, 0, registryError(r.ref, r.count, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, 0, registryError(r.ref, r.count, err)
		}
		raw, err = readBlob(rc, "config", d.Size, d.Digest)
		if err != nil {
			return nil, 0, err
		}
	}
	// Cached only if it is what the descriptor says (Commit checks);
	// the caller's own check then tells the user.
	_ = r.putSmall(d.Digest, raw)
	return io.NopCloser(bytes.NewReader(raw)), int64(len(raw)), nil
}

// touchSmall marks the manifests and the config as the most recently
// used blobs, once the layers have been: the least recently used go
// first, and a few kB that resolve an image are worth more than any one
// of its layers.
func (r *registry) touchSmall() {
	for _, h := range r.small {
		r.store.Touch(blobstore.Digest(h.String()))
	}
}

// putSmall puts a small blob in the cache. Another process writing it
// at the same time is no error: one of the two copies is kept.
func (r *registry) putSmall(h v1.Hash, b []byte) error {
	d, err := blobstore.ParseDigest(h.String())
	if err != nil {
		return err
	}
	w, err := r.store.Writer(d.String())
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.WriteAt(b, 0); err != nil {
		return err
	}
	return w.Commit(int64(len(b)), d)
}

type readerAtCloser struct {
	*io.SectionReader
	c io.Closer
}

func (r readerAtCloser) Close() error { return r.c.Close() }

// blobClient returns an HTTP client authenticated for pulls from the
// repository, for the layers' own requests (ranges, resumes), and the
// blob's URL. Making it asks the registry (the auth handshake).
func (r *registry) blobClient(ctx context.Context) (*http.Client, error) {
	auth, err := authn.DefaultKeychain.Resolve(r.ref.Context())
	if err != nil {
		return nil, err
	}
	rt := r.base
	if r.o.UserAgent != "" {
		rt = transport.NewUserAgent(rt, r.o.UserAgent)
	}
	t, err := transport.NewWithContext(ctx, r.ref.Context().Registry, auth, rt, []string{r.ref.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t}, nil
}

// blobURL is where the registry serves the blob h.
func (r *registry) blobURL(h v1.Hash) string {
	reg := r.ref.Context().Registry
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", reg.Scheme(), reg.RegistryStr(), r.ref.Context().RepositoryStr(), h)
}

// registryError says what a registry's refusal means for the user.
func registryError(ref name.Reference, count *tries, err error) error {
	reg := ref.Context().RegistryStr()
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden || hasCode(te, transport.UnauthorizedErrorCode, transport.DeniedErrorCode):
			return fmt.Errorf("registry %s refused access to %s (%v); log in with `docker login %s` or `podman login %s` (ext4pack reads ~/.docker/config.json, $DOCKER_CONFIG, $REGISTRY_AUTH_FILE and podman's auth.json), and check that the image exists and is yours to pull",
				reg, ref.Context().RepositoryStr(), te, reg, reg)
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode):
			return fmt.Errorf("registry %s has no image %s (%v)", reg, ref.Name(), te)
		}
		return fmt.Errorf("registry %s: %w", reg, err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return fmt.Errorf("cannot reach registry %s (%v): %w", reg, count, err)
	}
	return fmt.Errorf("registry %s: %w", reg, err)
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}
