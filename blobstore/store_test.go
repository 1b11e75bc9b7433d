package blobstore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func digestOf(b []byte) Digest {
	s := sha256.Sum256(b)
	return Digest("sha256:" + hex.EncodeToString(s[:]))
}

func content(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func open(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "blobs"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// put writes b as one blob, in order, and commits it.
func put(t *testing.T, s *Store, b []byte) Digest {
	t.Helper()
	d := digestOf(b)
	w, err := s.Writer(string(d))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(int64(len(b)), d); err != nil {
		t.Fatal(err)
	}
	return d
}

func readAll(t *testing.T, s *Store, d Digest) []byte {
	t.Helper()
	r, err := s.ReaderAt(d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := make([]byte, r.Size())
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func ingests(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Dir(), "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestOutOfOrderCommit: ranges written out of order, hashed as the
// prefix completes, read back before and after the commit; the blob then
// reads by digest, with modes 0700 and 0600, and the ingest is gone.
func TestOutOfOrderCommit(t *testing.T) {
	s := open(t)
	b := content(3<<20+123, 1)
	d := digestOf(b)
	w, err := s.Writer(string(d))
	if err != nil {
		t.Fatal(err)
	}
	third := int64(len(b) / 3)
	for _, r := range [][2]int64{{2 * third, int64(len(b))}, {0, third}, {third, 2 * third}} {
		if _, err := w.WriteAt(b[r[0]:r[1]], r[0]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.HashTo(third); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 100)
	if _, err := w.ReadAt(got, third-50); err != nil || !bytes.Equal(got, b[third-50:third+50]) {
		t.Fatalf("read back: %v", err)
	}
	if _, err := s.ReaderAt(d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a blob found before its commit: %v", err)
	}
	if err := w.Commit(int64(len(b)), d); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReadAt(got, 0); err != nil || !bytes.Equal(got, b[:100]) {
		t.Fatalf("read back after commit: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, s, d), b) {
		t.Fatal("the committed blob differs")
	}
	if n := ingests(t, s); len(n) != 0 {
		t.Errorf("ingests left: %v", n)
	}
	if runtime.GOOS != "windows" {
		for p, want := range map[string]fs.FileMode{s.Dir(): 0o700, filepath.Join(s.Dir(), "sha256"): 0o700, s.Path(d): 0o600} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
			}
		}
	}
}

// TestCommitRefuses: the wrong bytes, too few and too many are refused
// with ErrDigest; nothing enters the store and Close leaves nothing.
func TestCommitRefuses(t *testing.T) {
	b := content(100000, 2)
	d := digestOf(b)
	flipped := bytes.Clone(b)
	flipped[5000] ^= 0x10
	for name, data := range map[string][]byte{"flipped": flipped, "short": b[:99999], "long": append(bytes.Clone(b), 0)} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			w, err := s.Writer(string(d))
			if err != nil {
				t.Fatal(err)
			}
			w.WriteAt(data, 0)
			if err := w.Commit(int64(len(b)), d); !errors.Is(err, ErrDigest) {
				t.Errorf("commit: %v, want ErrDigest", err)
			}
			w.Close()
			if _, err := s.ReaderAt(d); !errors.Is(err, ErrNotFound) {
				t.Errorf("refused blob is in the store: %v", err)
			}
			if n := ingests(t, s); len(n) != 0 {
				t.Errorf("ingests left: %v", n)
			}
		})
	}
}

// TestWriterLock: one writer per ref; the second is told ErrLocked, and
// takes the ref once the first is closed. An ingest that a dead process
// left is started over.
func TestWriterLock(t *testing.T) {
	s := open(t)
	b := content(5000, 3)
	d := digestOf(b)
	w1, err := s.Writer(string(d))
	if err != nil {
		t.Fatal(err)
	}
	w1.WriteAt(b[:100], 0)
	if _, err := s.Writer(string(d)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v, want ErrLocked", err)
	}
	// The same store opened twice, as a second process would.
	s2, err := Open(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Writer(string(d)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second store's writer: %v, want ErrLocked", err)
	}
	w1.Close()
	w2, err := s2.Writer(string(d))
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if _, err := w2.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := w2.Commit(int64(len(b)), d); err != nil {
		t.Fatal(err)
	}

	// A stale ingest: a file at the ingest's path that nobody locks.
	b2 := content(7000, 4)
	d2 := digestOf(b2)
	stale := filepath.Join(s.Dir(), "ingest", key(string(d2)))
	if err := os.WriteFile(stale, bytes.Repeat([]byte("x"), 9000), 0o600); err != nil {
		t.Fatal(err)
	}
	w3, err := s.Writer(string(d2))
	if err != nil {
		t.Fatal(err)
	}
	defer w3.Close()
	w3.WriteAt(b2, 0)
	if err := w3.Commit(int64(len(b2)), d2); err != nil {
		t.Fatalf("over a stale ingest: %v", err)
	}
}

// TestWriterRace: a writer that opens an ingest just before its holder
// commits it (renames it into the store) must not take the committed
// file for its own and truncate it.
func TestWriterRace(t *testing.T) {
	s := open(t)
	b := content(9000, 6)
	d := digestOf(b)
	w1, err := s.Writer(string(d))
	if err != nil {
		t.Fatal(err)
	}
	w1.WriteAt(b, 0)
	testHookOpened = func() {
		testHookOpened = nil
		if err := w1.Commit(int64(len(b)), d); err != nil {
			t.Error(err)
		}
		w1.Close()
	}
	defer func() { testHookOpened = nil }()
	w2, err := s.Writer(string(d))
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	if got := readAll(t, s, d); !bytes.Equal(got, b) {
		t.Errorf("the committed blob was changed: %d bytes", len(got))
	}
}

// TestLockAcrossProcesses: a writer held by another process (this test
// binary, run again) is ErrLocked here until that process lets go.
func TestLockAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("BLOBSTORE_HOLD"); dir != "" {
		holdLock(dir)
		return
	}
	s := open(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockAcrossProcesses$")
	cmd.Env = append(os.Environ(), "BLOBSTORE_HOLD="+s.Dir())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "held\n" {
		stdin.Close()
		t.Fatalf("helper: %q %v", line, err)
	}
	if _, err := s.Writer("the-ref"); !errors.Is(err, ErrLocked) {
		t.Errorf("while another process holds it: %v, want ErrLocked", err)
	}
	stdin.Close() // the helper closes its writer and exits
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	w, err := s.Writer("the-ref")
	if err != nil {
		t.Fatalf("after the other process: %v", err)
	}
	w.Close()
}

func holdLock(dir string) {
	s, err := Open(dir)
	if err != nil {
		panic(err)
	}
	w, err := s.Writer("the-ref")
	if err != nil {
		panic(err)
	}
	os.Stdout.WriteString("held\n")
	io.Copy(io.Discard, os.Stdin)
	w.Close()
	os.Exit(0)
}

// TestConcurrentWriters: goroutines racing for one blob, each with its own
// store as separate processes would have, all end up reading it: the
// ones told ErrLocked wait for the blob to appear.
func TestConcurrentWriters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	b := content(1<<20, 5)
	d := digestOf(b)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(dir)
			if err != nil {
				errs <- err
				return
			}
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if r, err := s.ReaderAt(d); err == nil {
					got := make([]byte, r.Size())
					r.ReadAt(got, 0)
					r.Close()
					if !bytes.Equal(got, b) {
						errs <- errors.New("read a partial or wrong blob")
					}
					return
				}
				w, err := s.Writer(string(d))
				if errors.Is(err, ErrLocked) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				for off := 0; off < len(b); off += 4096 {
					w.WriteAt(b[off:off+4096], int64(off))
				}
				err = w.Commit(int64(len(b)), d)
				w.Close()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestEviction: the cap keeps the most recently used blobs; reading one
// makes it recent; a blob open for reading stays readable once evicted.
func TestEviction(t *testing.T) {
	s := open(t, WithMaxSize(3*1000))
	var ds []Digest
	for i := range 3 {
		ds = append(ds, put(t, s, content(1000, byte(10+i))))
		// Distinct, ordered times, whatever the file system's clock
		// granularity: ds[0] the oldest.
		at := time.Now().Add(time.Duration(i-30) * time.Minute)
		os.Chtimes(s.Path(ds[i]), at, at)
	}
	// Held open through its eviction, below; opening it marks it used,
	// so it is made the least recently used again.
	r1, err := s.ReaderAt(ds[1])
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	old := time.Now().Add(-29 * time.Minute) // after ds[0]'s
	os.Chtimes(s.Path(ds[1]), old, old)
	r0, err := s.ReaderAt(ds[0]) // the oldest becomes the most recent
	if err != nil {
		t.Fatal(err)
	}
	r0.Close()
	d3 := put(t, s, content(1000, 13))

	have := map[Digest]bool{}
	infos, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		have[in.Digest] = true
	}
	want := map[Digest]bool{ds[0]: true, ds[2]: true, d3: true}
	if len(have) != 3 || !have[ds[0]] || !have[ds[2]] || !have[d3] {
		t.Errorf("after the cap: %v, want %v", have, want)
	}
	if runtime.GOOS != "windows" {
		got := make([]byte, 1000)
		if _, err := r1.ReadAt(got, 0); err != nil || !bytes.Equal(got, content(1000, 11)) {
			t.Errorf("an evicted blob open for reading: %v", err)
		}
	}
}

// TestNamesAndPrune: names point at blobs; Prune(max) trims the oldest,
// Prune(0) empties the store, and names of removed blobs go with them.
func TestNamesAndPrune(t *testing.T) {
	s := open(t)
	a := put(t, s, content(500, 20))
	b := put(t, s, content(700, 21))
	at := time.Now().Add(-time.Hour)
	os.Chtimes(s.Path(a), at, at)
	if err := s.SetName("registry.example/app:v1", a); err != nil {
		t.Fatal(err)
	}
	if err := s.SetName("registry.example/app:v2", b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Lookup("registry.example/app:v1"); err != nil || got != a {
		t.Errorf("lookup: %s, %v", got, err)
	}
	if _, err := s.Lookup("registry.example/app:v3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown name: %v", err)
	}
	infos, _ := s.List()
	if len(infos) != 2 || infos[0].Digest != a || strings.Join(infos[0].Names, ",") != "registry.example/app:v1" {
		t.Errorf("list: %+v", infos)
	}
	removed, err := s.Prune(700)
	if err != nil || len(removed) != 1 || removed[0].Digest != a {
		t.Errorf("prune to 700: %+v, %v", removed, err)
	}
	if _, err := s.Lookup("registry.example/app:v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the name of a pruned blob: %v", err)
	}
	if removed, err := s.Prune(0); err != nil || len(removed) != 1 {
		t.Errorf("prune all: %+v, %v", removed, err)
	}
	if n, err := s.Size(); err != nil || n != 0 {
		t.Errorf("after prune all: %d bytes, %v", n, err)
	}
	if _, err := s.Lookup("registry.example/app:v2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a name after prune all: %v", err)
	}
}

func TestParseDigest(t *testing.T) {
	good := "sha256:" + strings.Repeat("ab", 32)
	if _, err := ParseDigest(good); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "sha256:", "sha512:" + strings.Repeat("ab", 32), "sha256:" + strings.Repeat("AB", 32), "sha256:" + strings.Repeat("zz", 32), "sha256:../../x"} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
