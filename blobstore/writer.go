package blobstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Writer is an ingest: a blob being written, perhaps out of order (the
// ranges of a download, each at its offset), and read back while it
// grows. Its digest runs on as the caller declares a prefix complete
// (HashTo), so that Commit has only the rest to hash. Close it in every
// case: before Commit it removes the ingest.
//
// WriteAt and ReadAt may be called from several goroutines at once;
// HashTo, Commit and Close from one at a time.
type Writer struct {
	s    *Store
	ref  string
	path string
	f    *os.File

	mu        sync.Mutex
	h         hash.Hash
	hashed    int64 // bytes [0, hashed) are in h
	buf       []byte
	committed bool
	closed    bool
}

// Writer opens the ingest named ref (any string; a digest, typically)
// for writing. Only one writer may hold a ref at a time, across
// processes: a second gets an error wrapping ErrLocked. An ingest left by
// a process that died is started over: its ranges may have been written
// out of order, and nothing says which are complete.
func (s *Store) Writer(ref string) (*Writer, error) {
	p := filepath.Join(s.dir, "ingest", key(ref))
	for {
		f, err := openIngest(p)
		if err != nil {
			return nil, fmt.Errorf("blobstore: ingest %s: %w", ref, err)
		}
		if testHookOpened != nil {
			testHookOpened()
		}
		if err := tryLock(f); err != nil {
			f.Close()
			if errors.Is(err, errWouldBlock) {
				return nil, fmt.Errorf("ingest %s: %w", ref, ErrLocked)
			}
			return nil, fmt.Errorf("blobstore: locking ingest %s: %w", ref, err)
		}
		// Between the open and the lock, the writer that held the file
		// may have committed it (renamed it away) or removed it: the lock
		// is then on a file nobody will find. Start again on a new one.
		if !stillAt(f, p) {
			unlock(f)
			f.Close()
			continue
		}
		if err := f.Truncate(0); err != nil {
			unlock(f)
			f.Close()
			return nil, fmt.Errorf("blobstore: ingest %s: %w", ref, err)
		}
		return &Writer{s: s, ref: ref, path: p, f: f, h: sha256.New()}, nil
	}
}

// testHookOpened runs between the open and the lock of an ingest (tests).
var testHookOpened func()

// stillAt reports whether path still names the open file f.
func stillAt(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	if err != nil {
		return false
	}
	return os.SameFile(a, b)
}

// WriteAt writes p at off.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.f.WriteAt(p, off)
	if err != nil {
		err = fmt.Errorf("blobstore: writing ingest %s: %w", w.ref, err)
	}
	return n, err
}

// ReadAt reads back what was written. It reads the same file after
// Commit, whatever evicts the committed blob meanwhile: the file stays
// open.
func (w *Writer) ReadAt(p []byte, off int64) (int, error) {
	return w.f.ReadAt(p, off)
}

// HashTo adds the bytes up to offset n to the running digest: the caller
// says that [0, n) is written and final. A smaller n than before does
// nothing.
func (w *Writer) HashTo(n int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hashTo(n)
}

func (w *Writer) hashTo(n int64) error {
	if w.buf == nil && w.hashed < n {
		w.buf = make([]byte, 256<<10)
	}
	for w.hashed < n {
		b := w.buf[:min(int64(len(w.buf)), n-w.hashed)]
		k, err := w.f.ReadAt(b, w.hashed)
		w.h.Write(b[:k])
		w.hashed += int64(k)
		if err != nil && w.hashed < n {
			return fmt.Errorf("blobstore: reading back ingest %s at byte %d: %w", w.ref, w.hashed, err)
		}
	}
	return nil
}

// Commit checks that the ingest holds size bytes whose digest is
// expected, and only then moves it into the store, atomically: a reader
// finds the whole blob or none. A mismatch is an error wrapping ErrDigest
// and nothing enters the store. The committed blob replaces an equal one
// that another process committed meanwhile. Commit then evicts the least
// recently used blobs beyond the store's cap.
//
// The ingest is not synced to disk: a blob that a crash truncates or
// garbles is caught by whoever hashes it next, as every reader of blobs
// must (ReaderAt checks nothing).
func (w *Writer) Commit(size int64, expected Digest) error {
	if _, err := ParseDigest(string(expected)); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.committed {
		return fmt.Errorf("blobstore: ingest %s: commit after close or commit", w.ref)
	}
	st, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("blobstore: ingest %s: %w", w.ref, err)
	}
	if st.Size() != size || w.hashed > size {
		return &DigestError{Want: expected, WantSize: size, Size: max(st.Size(), w.hashed)}
	}
	if err := w.hashTo(size); err != nil {
		return err
	}
	if got := Digest("sha256:" + hex.EncodeToString(w.h.Sum(nil))); got != expected {
		return &DigestError{Want: expected, WantSize: size, Got: got, Size: size}
	}
	if err := os.Rename(w.path, w.s.blobPath(expected)); err != nil {
		return fmt.Errorf("blobstore: committing %s: %w", expected, err)
	}
	w.committed = true
	// The blob is in: a failed eviction leaves the store over its cap
	// until the next commit or prune, nothing worse.
	_, _ = w.s.Prune(w.s.maxSize)
	return nil
}

// DigestError is Commit's refusal: the ingest's size or digest is not the
// one expected. It wraps ErrDigest.
type DigestError struct {
	Want     Digest
	WantSize int64
	Got      Digest // empty when the size alone differs
	Size     int64
}

func (e *DigestError) Error() string {
	if e.Size != e.WantSize {
		return fmt.Sprintf("%v: %d bytes, not %d", ErrDigest, e.Size, e.WantSize)
	}
	return fmt.Sprintf("%v: its sha256 is %s, not %s", ErrDigest, e.Got.Hex(), e.Want.Hex())
}

func (e *DigestError) Unwrap() error { return ErrDigest }

// Close releases the ingest. Before Commit, it removes what was written.
// The bytes can be read until Close, after Commit too.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if !w.committed {
		// Removed while still locked, so that no other writer can take
		// the file over between the unlock and the removal.
		if rerr := os.Remove(w.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("blobstore: removing ingest %s: %w", w.ref, rerr)
		}
	}
	unlock(w.f)
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}
