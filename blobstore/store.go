// Package blobstore keeps blobs by digest on disk: the cache that
// ext4pack fetches registry blobs into and builds from. It has the shape
// of containerd's content store: a blob is written to an ingest file
// named by a ref (Writer), enters the store by an atomic rename only once
// the expected digest has been checked (Commit), and is read by digest
// (ReaderAt). Readers never see a partial blob.
//
// Several processes may share a store. An ingest is held by one writer
// at a time, with an advisory lock on its file (flock, or LockFileEx on
// Windows); a second writer of the same ref gets ErrLocked, and may wait
// for the blob to appear. Eviction and pruning remove files that other
// processes may hold open, which keep reading them (on Windows the
// removal of an open blob fails and it is kept).
//
// The store is capped: after each commit the least recently used blobs
// are removed until the blobs take at most the store's maximum size.
// "Used" is the file's modification time, which ReaderAt sets: access
// times are not kept on most mounts (noatime, relatime).
//
// Layout, under the store's directory (0700, files 0600):
//
//	sha256/<hex>       committed blobs
//	ingest/<key>       blobs being written (key: the sha256 of the ref)
//	names/<key>        names (a tag, say) pointing at a blob
//
// It knows nothing of images, layers or ext4.
package blobstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultMaxSize is the cap of a store opened without WithMaxSize.
const DefaultMaxSize int64 = 10 << 30

var (
	// ErrNotFound is returned (wrapped) for a digest or a name the store
	// does not hold.
	ErrNotFound = errors.New("blobstore: not found")
	// ErrLocked is returned (wrapped) by Writer when another writer,
	// in this process or another, holds the ref.
	ErrLocked = errors.New("blobstore: ingest in use by another writer")
	// ErrDigest is returned (wrapped) by Commit when the bytes written do
	// not have the expected size or digest.
	ErrDigest = errors.New("blobstore: content does not match its digest")
)

// Digest is a blob's digest as the OCI image-spec writes it:
// "sha256:" and 64 lowercase hex digits, the only algorithm kept.
type Digest string

// ParseDigest checks s and returns it as a Digest.
func ParseDigest(s string) (Digest, error) {
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hexPart) != 64 || strings.ToLower(hexPart) != hexPart {
		return "", fmt.Errorf("blobstore: digest %q: want sha256: and 64 lowercase hex digits", s)
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return "", fmt.Errorf("blobstore: digest %q: want sha256: and 64 lowercase hex digits", s)
	}
	return Digest(s), nil
}

// Hex is the digest's hex part.
func (d Digest) Hex() string { return strings.TrimPrefix(string(d), "sha256:") }

func (d Digest) String() string { return string(d) }

// Store is a directory of blobs. Its methods may be called from several
// goroutines at once.
type Store struct {
	dir     string
	maxSize int64
}

type options struct {
	maxSize int64
}

// Option configures Open.
type Option func(*options) error

// WithMaxSize caps the blobs' total size at n bytes (n > 0): each commit
// evicts the least recently used blobs beyond it. Default: DefaultMaxSize
// (10 GiB).
func WithMaxSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("blobstore: maximum size %d: must be more than 0", n)
		}
		o.maxSize = n
		return nil
	}
}

// Open opens the store in dir, creating it (mode 0700) if need be.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{maxSize: DefaultMaxSize}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if dir == "" {
		return nil, errors.New("blobstore: no directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"sha256", "ingest", "names"} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o700); err != nil {
			return nil, fmt.Errorf("blobstore: %w", err)
		}
	}
	return &Store{dir: abs, maxSize: o.maxSize}, nil
}

// Dir is the store's directory, absolute.
func (s *Store) Dir() string { return s.dir }

// MaxSize is the store's cap, in bytes.
func (s *Store) MaxSize() int64 { return s.maxSize }

func (s *Store) blobPath(d Digest) string { return filepath.Join(s.dir, "sha256", d.Hex()) }

// ReaderAt is a committed blob, open for reading.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

type fileReader struct {
	*os.File
	size int64
}

func (r fileReader) Size() int64 { return r.size }

// ReaderAt opens the blob d, and marks it as used now. A blob the store
// lacks is an error wrapping ErrNotFound. The bytes are not checked
// here: a caller that must trust them hashes them (a disk can rot).
func (s *Store) ReaderAt(d Digest) (ReaderAt, error) {
	if _, err := ParseDigest(string(d)); err != nil {
		return nil, err
	}
	p := s.blobPath(d)
	f, err := openBlob(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	// The least recently used go first: a failure to mark one (a store
	// on a read-only mount) only makes its eviction come sooner.
	now := time.Now()
	_ = os.Chtimes(p, now, now)
	return fileReader{f, st.Size()}, nil
}

// Touch marks the blob d as used now, if the store has it.
func (s *Store) Touch(d Digest) {
	if _, err := ParseDigest(string(d)); err != nil {
		return
	}
	now := time.Now()
	_ = os.Chtimes(s.blobPath(d), now, now)
}

// Path is where the committed blob d lives (it may not exist): for
// messages that name a corrupt file.
func (s *Store) Path(d Digest) string { return s.blobPath(d) }

// Delete removes the blob d. Deleting a blob the store lacks is not an
// error.
func (s *Store) Delete(d Digest) error {
	if _, err := ParseDigest(string(d)); err != nil {
		return err
	}
	if err := os.Remove(s.blobPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: %w", err)
	}
	return nil
}

// key names a ref's or a name's file: refs and names are any strings
// (a digest, an image reference), file names are not.
func key(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
