package blobstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Info describes a committed blob.
type Info struct {
	Digest Digest
	Size   int64
	// Used is when it was last committed or opened for reading.
	Used time.Time
	// Names are the names pointing at it.
	Names []string
}

// List returns the store's blobs, the least recently used first.
func (s *Store) List() ([]Info, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "sha256"))
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	var out []Info
	for _, e := range ents {
		d, err := ParseDigest("sha256:" + e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue // not ours: left alone, not counted
		}
		st, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // evicted by another process meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("blobstore: %w", err)
		}
		out = append(out, Info{Digest: d, Size: st.Size(), Used: st.ModTime()})
	}
	names, err := s.names()
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Names = names[out[i].Digest]
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := a.Used.Compare(b.Used); c != 0 {
			return c
		}
		return strings.Compare(string(a.Digest), string(b.Digest))
	})
	return out, nil
}

// names maps each named blob to its names, sorted.
func (s *Store) names() (map[Digest][]string, error) {
	dir := filepath.Join(s.dir, "names")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	m := map[Digest][]string{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		d, name, err := s.readName(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		m[d] = append(m[d], name)
	}
	for _, v := range m {
		slices.Sort(v)
	}
	return m, nil
}

// Size is the total size of the store's blobs.
func (s *Store) Size() (int64, error) {
	infos, err := s.List()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, in := range infos {
		n += in.Size
	}
	return n, nil
}

// Prune removes the least recently used blobs until the rest take at
// most max bytes (0: all of them), and returns what it removed. It also
// removes the ingests no writer holds (left by a process that died) and
// the names whose blob is gone.
func (s *Store) Prune(max int64) ([]Info, error) {
	infos, err := s.List()
	if err != nil {
		return nil, err
	}
	var total int64
	for _, in := range infos {
		total += in.Size
	}
	var removed []Info
	for _, in := range infos {
		if total <= max {
			break
		}
		err := os.Remove(s.blobPath(in.Digest))
		switch {
		case err == nil:
			removed = append(removed, in)
			total -= in.Size
		case errors.Is(err, fs.ErrNotExist):
			total -= in.Size // another process evicted it
		}
		// Any other failure (a blob another process holds open on
		// Windows) keeps the blob: the next prune tries again.
	}
	s.pruneIngests()
	s.pruneNames()
	return removed, nil
}

// pruneIngests removes the ingests that no writer holds.
func (s *Store) pruneIngests() {
	dir := filepath.Join(s.dir, "ingest")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		f, err := openIngest(p)
		if err != nil {
			continue
		}
		if tryLock(f) == nil {
			if stillAt(f, p) {
				os.Remove(p)
			}
			unlock(f)
		}
		f.Close()
	}
}

// pruneNames removes the names whose blob is gone, and temporary files
// that a process died before renaming.
func (s *Store) pruneNames() {
	dir := filepath.Join(s.dir, "names")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), ".tmp-") {
			if st, err := e.Info(); err == nil && time.Since(st.ModTime()) > time.Hour {
				os.Remove(p)
			}
			continue
		}
		d, _, err := s.readName(p)
		if err != nil {
			continue
		}
		if _, err := os.Stat(s.blobPath(d)); errors.Is(err, fs.ErrNotExist) {
			os.Remove(p)
		}
	}
}
