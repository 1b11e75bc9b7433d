package ext4pack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ext4pack/ext4pack/blobstore"
	"github.com/ext4pack/ext4pack/imagesrc"
)

// DefaultCacheMaxSize is the blob cache's cap unless FetchOptions say.
const DefaultCacheMaxSize = blobstore.DefaultMaxSize

// FetchOptions say how a registry's image is fetched and cached. The
// zero value is the default: the blob cache in DefaultCacheDir, capped
// at 10 GiB, a tag's cached manifest used when there is one, 6
// connections. Other sources (layouts, archives) are local files: none
// of this applies to them.
type FetchOptions struct {
	// Pull is when the registry is asked, in podman's words: "missing"
	// (the default; a tag may resolve to the manifest cached for it,
	// and only the blobs the cache lacks are fetched), "always" (a tag
	// is resolved at the registry every time; cached blobs are still
	// not fetched again) or "never" (offline: the image must be in the
	// cache). A reference by digest whose blobs are cached asks no
	// registry.
	Pull string
	// Jobs bounds the connections to the registry, 1 to 64. 0: 6.
	Jobs int
	// CacheDir is the blob cache's directory. Empty: DefaultCacheDir.
	CacheDir string
	// NoCache keeps nothing: the blobs go to a temporary directory that
	// is removed when the build ends. Pull "never" then cannot work.
	NoCache bool
	// CacheMaxSize caps the cache: after each blob enters it, the least
	// recently used are evicted beyond it. 0: DefaultCacheMaxSize.
	CacheMaxSize int64
	// StallTimeout is how long a connection may bring no byte before it
	// is dropped and the blob resumed on another. 0: 30 s.
	StallTimeout time.Duration
}

// check checks the options' values.
func (f FetchOptions) check() error {
	if f.Pull != "" {
		if _, err := imagesrc.ParsePullPolicy(f.Pull); err != nil {
			return fmt.Errorf("ext4pack: %w", err)
		}
	}
	switch {
	case f.Jobs < 0 || f.Jobs > 64:
		return fmt.Errorf("ext4pack: jobs %d: out of range 1..64", f.Jobs)
	case f.CacheMaxSize < 0:
		return fmt.Errorf("ext4pack: cache size %d: negative", f.CacheMaxSize)
	case f.StallTimeout < 0:
		return fmt.Errorf("ext4pack: stall timeout %v: negative", f.StallTimeout)
	case f.NoCache && f.Pull == "never":
		return errors.New("ext4pack: pull never reads the cache, which no-cache turns off")
	}
	return nil
}

// DefaultCacheDir is the blob cache's directory: ext4pack/blobs in the
// user's cache directory ($XDG_CACHE_HOME, else ~/.cache, on Linux;
// ~/Library/Caches on macOS; %LocalAppData% on Windows).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("ext4pack: no cache directory (%w); name one", err)
	}
	return filepath.Join(d, "ext4pack", "blobs"), nil
}

func cacheDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return DefaultCacheDir()
}

// CacheEntry is a blob in the cache.
type CacheEntry struct {
	Digest string // "sha256:..."
	Size   int64
	// Used is when a build last read it, or fetched it.
	Used time.Time
	// Names are what points at it: "tag REFERENCE" for a manifest a tag
	// resolved to.
	Names []string
}

func entries(infos []blobstore.Info) []CacheEntry {
	var out []CacheEntry
	for _, in := range infos {
		out = append(out, CacheEntry{Digest: in.Digest.String(), Size: in.Size, Used: in.Used, Names: in.Names})
	}
	return out
}

// openCache opens the cache in dir (empty: the default) without making
// it: a cache that does not exist lists as empty.
func openCache(dir string) (*blobstore.Store, error) {
	dir, err := cacheDir(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("ext4pack: the cache: %w", err)
	}
	return blobstore.Open(dir)
}

// ListCache lists the blob cache in dir (empty: the default), the least
// recently used first.
func ListCache(dir string) ([]CacheEntry, error) {
	s, err := openCache(dir)
	if s == nil || err != nil {
		return nil, err
	}
	infos, err := s.List()
	return entries(infos), err
}

// PruneCache removes the least recently used blobs of the cache in dir
// (empty: the default) until the rest take at most maxSize bytes (0:
// all of them), and the partial downloads that no build is writing. It
// returns the blobs removed.
func PruneCache(dir string, maxSize int64) ([]CacheEntry, error) {
	if maxSize < 0 {
		return nil, fmt.Errorf("ext4pack: cache size %d: negative", maxSize)
	}
	s, err := openCache(dir)
	if s == nil || err != nil {
		return nil, err
	}
	removed, err := s.Prune(maxSize)
	return entries(removed), err
}

// imageOptions turns FetchOptions into imagesrc's, for a registry's
// image: the cache opened (made if need be), or a spool. The store is nil
// for other sources.
func (f FetchOptions) imageOptions(ref string, warn func(string)) (imagesrc.Options, error) {
	var o imagesrc.Options
	pull := imagesrc.PullMissing
	if f.Pull != "" {
		pull, _ = imagesrc.ParsePullPolicy(f.Pull) // checked
	}
	o.Pull, o.Jobs, o.StallTimeout, o.Warn = pull, f.Jobs, f.StallTimeout, warn
	if !imagesrc.IsRegistry(ref) || f.NoCache {
		return o, nil
	}
	dir, err := cacheDir(f.CacheDir)
	if err != nil {
		return o, err
	}
	max := f.CacheMaxSize
	if max == 0 {
		max = DefaultCacheMaxSize
	}
	s, err := blobstore.Open(dir, blobstore.WithMaxSize(max))
	if err != nil {
		return o, fmt.Errorf("ext4pack: the cache: %w", err)
	}
	o.Cache = s
	return o, nil
}
