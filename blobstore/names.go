package blobstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SetName points name (any string: an image reference, say) at the blob
// d, replacing what it pointed at. The blob need not be in the store yet.
func (s *Store) SetName(name string, d Digest) error {
	if _, err := ParseDigest(string(d)); err != nil {
		return err
	}
	dir := filepath.Join(s.dir, "names")
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("blobstore: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s\n%s\n", d, name)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, key(name)))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("blobstore: naming %s: %w", d, err)
	}
	return nil
}

// Lookup returns the blob name points at: an error wrapping ErrNotFound
// when the store has no such name. The blob itself may have been evicted.
func (s *Store) Lookup(name string) (Digest, error) {
	d, n, err := s.readName(filepath.Join(s.dir, "names", key(name)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("name %s: %w", name, ErrNotFound)
	case err != nil:
		return "", err
	case n != name:
		return "", fmt.Errorf("name %s: %w", name, ErrNotFound)
	}
	return d, nil
}

// readName reads a names/ file: the digest, then the name.
func (s *Store) readName(path string) (Digest, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	ds, name, _ := strings.Cut(strings.TrimSuffix(string(b), "\n"), "\n")
	d, err := ParseDigest(ds)
	if err != nil {
		return "", "", fmt.Errorf("blobstore: %s: %w", path, err)
	}
	return d, name, nil
}
