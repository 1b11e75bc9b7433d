package imagesrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
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

func openRegistry(ctx context.Context, s string, want v1.Platform, explicit bool, o Options) (*Image, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an image reference: %w", s, err)
	}
	count := &tries{next: o.Transport}
	if count.next == nil {
		count.next = remote.DefaultTransport
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithRetryBackoff(retryBackoff),
		remote.WithRetryPredicate(retryable),
		remote.WithTransport(count),
	}
	if o.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(o.UserAgent))
	}
	p, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, err
	}
	desc, err := p.Get(ctx, ref)
	if err != nil {
		return nil, registryError(ref, count, err)
	}
	open := func(ctx context.Context, d v1.Descriptor) (io.ReadCloser, int64, error) {
		if len(d.URLs) > 0 {
			return nil, 0, fmt.Errorf("blob %s lives at %s, outside the registry (a foreign layer)", short(d.Digest), d.URLs[0])
		}
		l, err := p.Layer(ctx, ref.Context().Digest(d.Digest.String()))
		if err != nil {
			return nil, 0, registryError(ref, count, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, 0, registryError(ref, count, err)
		}
		return rc, d.Size, nil
	}
	// The manifest was fetched by Get; hand it to resolve as a blob.
	first := desc.Descriptor
	got := desc.Manifest
	openFirst := func(ctx context.Context, d v1.Descriptor) (io.ReadCloser, int64, error) {
		if d.Digest == first.Digest {
			return io.NopCloser(bytes.NewReader(got)), int64(len(got)), nil
		}
		if d.MediaType == "" || isIndex(d.MediaType) || isManifest(d.MediaType) {
			sub, err := p.Get(ctx, ref.Context().Digest(d.Digest.String()))
			if err != nil {
				return nil, 0, registryError(ref, count, err)
			}
			return io.NopCloser(bytes.NewReader(sub.Manifest)), int64(len(sub.Manifest)), nil
		}
		return open(ctx, d)
	}
	return resolve(ctx, first, openFirst, want, explicit)
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
