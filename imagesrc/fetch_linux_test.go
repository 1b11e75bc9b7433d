package imagesrc

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/blobstore"
	"github.com/ext4pack/ext4pack/internal/ocitest"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// The fetcher's tests: a real registry (distribution's docker-registry)
// behind toxiproxy, run in this process, serving images whose layers are
// incompressible (gzip keeps their size), fetched in small pieces so that
// a few MB make many ranges. Each test reads the layers as the build
// would, in order, and compares them with the blobs pushed.

// layerSizes are the test image's layers, base first: about their
// compressed sizes too.
var layerSizes = []int{3 << 20, 1200 << 10, 600 << 10, 300 << 10, 100 << 10}

// testPiece is the piece size the tests fetch in.
const testPiece = 256 << 10

// noise is n incompressible bytes from seed.
func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// layerTar is a layer holding one file of noise.
func layerTar(t testing.TB, name string, seed uint64, size int) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	data := noise(seed, size)
	mt := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: mt}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	return b.Bytes()
}

// testImage is an image in a layout and in a registry.
type testImage struct {
	layout   string   // the OCI layout directory
	manifest string   // the manifest's digest
	blobs    [][]byte // the layer blobs, base first
	digest   []string // their digests
	config   string   // the config's digest
}

// makeImage writes an image of layers (seed, size) to a new layout,
// tagged v1.
func makeImage(t testing.TB, seeds []uint64, sizes []int) *testImage {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	lay := ocitest.NewLayout(t, dir)
	var layers []ocitest.Layer
	for i, s := range seeds {
		layers = append(layers, ocitest.Layer{Tar: layerTar(t, fmt.Sprintf("f%d-%d", i, s), s, sizes[i]), Compression: "gzip"})
	}
	lay.Tag("v1", lay.Image(ocitest.Image{Layers: layers}))
	lay.Close()
	im := &testImage{layout: dir}
	var idx struct{ Manifests []ocitest.Descriptor }
	readJSON(t, filepath.Join(dir, "index.json"), &idx)
	var man struct {
		Config ocitest.Descriptor
		Layers []ocitest.Descriptor
	}
	readJSON(t, lay.BlobPath(idx.Manifests[0]), &man)
	im.config = man.Config.Digest
	im.manifest = idx.Manifests[0].Digest
	for _, l := range man.Layers {
		b, err := os.ReadFile(lay.BlobPath(l))
		if err != nil {
			t.Fatal(err)
		}
		im.blobs = append(im.blobs, b)
		im.digest = append(im.digest, l.Digest)
	}
	return im
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// fixture is a registry, a proxy in front of it, and an image in it.
type fixture struct {
	reg   *ocitest.Registry
	proxy *ocitest.Proxy
	img   *testImage
	ref   string // through the proxy
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	img := makeImage(t, []uint64{1, 2, 3, 4, 5}, layerSizes)
	reg := ocitest.StartRegistry(t, "", "")
	reg.Push(t, "oci:"+img.layout+":v1", "test/img:v1")
	proxy := ocitest.StartProxy(t, reg.Host)
	reg.ResetLog()
	return &fixture{reg: reg, proxy: proxy, img: img, ref: proxy.Host + "/test/img:v1"}
}

// opts are the tests' fetching options: small pieces, a short stall
// timeout and short waits, into store.
func opts(store *blobstore.Store) Options {
	return Options{Cache: store, PieceSize: testPiece, Jobs: 4, StallTimeout: 2 * time.Second, Backoff: 50 * time.Millisecond, Arch: "amd64"}
}

func newStore(t testing.TB) *blobstore.Store {
	t.Helper()
	s, err := blobstore.Open(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pull reads every layer of ref in order, as a build does, and returns
// them with the fetcher's counts. during, when set, runs once the first
// bytes of the base layer are read.
func pull(t testing.TB, ref string, o Options, during func()) ([][]byte, *fetcher, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	im, err := Open(ctx, ref, o)
	if err != nil {
		return nil, nil, err
	}
	defer im.Close()
	var out [][]byte
	for i, l := range im.Layers {
		rc, err := l.Open(ctx)
		if err != nil {
			return out, im.fetch, err
		}
		var b []byte
		if i == 0 && during != nil {
			head := make([]byte, 4096)
			if _, err := io.ReadFull(rc, head); err != nil {
				rc.Close()
				return out, im.fetch, err
			}
			during()
			b = head
		}
		rest, err := io.ReadAll(rc)
		rc.Close()
		b = append(b, rest...)
		if err != nil {
			return out, im.fetch, err
		}
		out = append(out, b)
	}
	return out, im.fetch, nil
}

// same checks that got are the image's layer blobs.
func (img *testImage) same(t testing.TB, got [][]byte) {
	t.Helper()
	if len(got) != len(img.blobs) {
		t.Fatalf("%d layers, want %d", len(got), len(img.blobs))
	}
	for i := range got {
		if !bytes.Equal(got[i], img.blobs[i]) {
			t.Errorf("layer %d: %d bytes differ from the %d pushed", i+1, len(got[i]), len(img.blobs[i]))
		}
	}
}

// checkStore checks that the store holds only blobs whose bytes are
// their digest, and no ingest; it returns their digests.
func checkStore(t testing.TB, s *blobstore.Store) map[string]bool {
	t.Helper()
	infos, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, in := range infos {
		b, err := os.ReadFile(s.Path(in.Digest))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if "sha256:"+hex.EncodeToString(sum[:]) != in.Digest.String() {
			t.Errorf("the cache holds %s, whose bytes are not its digest", in.Digest)
		}
		have[in.Digest.String()] = true
	}
	ents, _ := os.ReadDir(filepath.Join(s.Dir(), "ingest"))
	for _, e := range ents {
		t.Errorf("an ingest is left: %s", e.Name())
	}
	return have
}

// TestFetch: the layers arrive in parallel, the big ones as ranges, and
// read in order they are the blobs pushed; the cache then holds them,
// verified, and nothing else is left.
func TestFetch(t *testing.T) {
	fx := newFixture(t)
	store := newStore(t)
	got, f, err := pull(t, fx.ref, opts(store), nil)
	if err != nil {
		t.Fatal(err)
	}
	fx.img.same(t, got)
	have := checkStore(t, store)
	for _, d := range fx.img.digest {
		if !have[d] {
			t.Errorf("layer blob %s not cached", d)
		}
	}
	// 3 MiB in 256 KiB pieces is 12 ranges, 1.2 MB 4, the others one
	// request each.
	pieces := 0
	for _, b := range fx.img.blobs {
		if n := len(b) / testPiece; len(b) > 2*testPiece {
			pieces += n
		} else {
			pieces++
		}
	}
	if n := int(f.requests.Load()); n < pieces {
		t.Errorf("%d blob requests, want at least %d: the big blobs were not split", n, pieces)
	}
	t.Logf("%d blob requests, %d in the registry's log", f.requests.Load(), fx.reg.Gets("/blobs/"))
}

// retried says whether the fetcher retried after a failure whose text
// holds want.
func retried(f *fetcher, want string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, err := range f.retried {
		if strings.Contains(err.Error(), want) {
			return true
		}
	}
	return false
}

func retriedList(f *fetcher) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, err := range f.retried {
		s = append(s, err.Error())
	}
	return strings.Join(s, "\n")
}

// TestFetchFaults: faults of the link in the middle of a pull, each
// from toxiproxy between the fetcher and the registry, on a proxy of its
// own; each pull ends with the blobs pushed, and the fetcher shows that it
// met the fault (the failure it retried). No toxic is removed during a
// pull: the breaking ones act on the first connections only.
func TestFetchFaults(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		name   string
		resets bool // connections closed by the proxy are reset (RST)
		toxic  string
		tune   func(*Options)
		want   string // a retried failure's text
	}{
		{
			name:  "every connection cut after 700 kB",
			toxic: `{"type": "limit_data", "attributes": {"bytes": 700000}}`,
			want:  "the connection broke: unexpected EOF",
		},
		{
			// Inside the base layer's 256 KiB ranges, 100 kB in.
			name:   "connections reset in the middle of ranges",
			resets: true,
			toxic:  `{"type": "ext4pack_break", "attributes": {"after": 100000, "conns": 3, "mode": "cut"}}`,
			want:   "connection reset by peer",
		},
		{
			// Two connections go silent, and stay open.
			name:  "stalled past the timeout",
			toxic: `{"type": "ext4pack_break", "attributes": {"after": 400000, "conns": 2, "mode": "hold"}}`,
			tune:  func(o *Options) { o.StallTimeout = 500 * time.Millisecond },
			want:  "stalled: no byte for 500ms",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := ocitest.StartProxy(t, fx.reg.Host)
			if tc.resets {
				proxy.Resets(t)
			}
			proxy.Toxic(t, tc.toxic)
			o := opts(newStore(t))
			if tc.tune != nil {
				tc.tune(&o)
			}
			start := time.Now()
			got, f, err := pull(t, proxy.Host+"/test/img:v1", o, nil)
			if err != nil {
				t.Fatalf("%v\nretried:\n%s", err, retriedList(f))
			}
			fx.img.same(t, got)
			checkStore(t, o.Cache)
			t.Logf("%v, %d requests, %d retries", time.Since(start).Round(time.Millisecond), f.requests.Load(), f.retries.Load())
			if !retried(f, tc.want) {
				t.Errorf("no retry after %q; retried:\n%s", tc.want, retriedList(f))
			}
		})
	}
}

// TestFetchRestart: the registry is killed in the middle of a pull and
// started again; the pull resumes and completes.
func TestFetchRestart(t *testing.T) {
	fx := newFixture(t)
	fx.proxy.Toxic(t, `{"type": "bandwidth", "attributes": {"rate": 1000}}`)
	o := opts(newStore(t))
	o.Backoff = 300 * time.Millisecond // 0.3+0.6+1.2+2.4 s: time to start again
	got, f, err := pull(t, fx.ref, o, func() {
		fx.reg.Stop()
		time.Sleep(300 * time.Millisecond)
		fx.reg.Start(t)
	})
	if err != nil {
		t.Fatalf("%v\nretried:\n%s", err, retriedList(f))
	}
	fx.img.same(t, got)
	checkStore(t, o.Cache)
	if f.retries.Load() == 0 {
		t.Error("no retry: the restart was not seen")
	}
	t.Logf("%d requests, %d retries:\n%s", f.requests.Load(), f.retries.Load(), retriedList(f))
}

// TestFetchGone: the registry dies in the middle of a pull for good: a
// clear error naming the layer, the byte and the cause, no ingest left,
// and only verified blobs in the cache.
func TestFetchGone(t *testing.T) {
	fx := newFixture(t)
	fx.proxy.Toxic(t, `{"type": "bandwidth", "attributes": {"rate": 1000}}`)
	o := opts(newStore(t))
	start := time.Now()
	_, f, err := pull(t, fx.ref, o, fx.reg.Stop)
	t.Logf("%v: %v", time.Since(start).Round(time.Millisecond), err)
	var e *Error
	if err == nil || !errors.As(err, &e) || !strings.Contains(e.Layer, "layer ") || !strings.Contains(err.Error(), "fetching the blob failed at byte ") || !strings.Contains(err.Error(), "tries in a row") {
		t.Errorf("error %v: want one naming the layer, the byte and the cause", err)
	}
	if f != nil && f.err == nil {
		t.Error("the fetcher recorded no failure")
	}
	checkStore(t, o.Cache)
}

// TestFetchTampered: a blob whose bytes the registry changed (same
// size), or cut short, is refused with ErrDigest naming its layer, and
// not cached.
func TestFetchTampered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		msg    string
	}{
		{"flipped", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }, "the registry sent bytes whose sha256 is"},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, "the registry serves 153730 bytes, the manifest says 307461"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			p := fx.reg.BlobPath(fx.img.digest[3])
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			o := opts(newStore(t))
			_, _, err = pull(t, fx.ref, o, nil)
			if !errors.Is(err, ErrDigest) || !strings.Contains(err.Error(), "layer 4 of 5") || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "not cached") {
				t.Errorf("error %v: want ErrDigest naming layer 4 of 5, saying %q", err, tc.msg)
			}
			if have := checkStore(t, o.Cache); have[fx.img.digest[3]] {
				t.Error("the damaged blob was cached")
			}
		})
	}
}

// TestFetchIgnoresRange: blobs served by a server that ignores Range
// headers (the registry redirects blob GETs there, as to a CDN): one
// connection a blob, and a cut connection resumed by reading past what
// was already there.
func TestFetchIgnoresRange(t *testing.T) {
	oracle.RequireTool(t, "python3", "python3")
	// Python's http.server, behind a proxy of its own, serves the
	// registry's storage directory.
	img := makeImage(t, []uint64{1, 2, 3, 4, 5}, layerSizes)
	reg, webProxy := ocitest.StartRegistryRedirected(t)
	reg.Push(t, "oci:"+img.layout+":v1", "test/img:v1")
	ref := reg.Host + "/test/img:v1"

	t.Run("whole", func(t *testing.T) {
		got, f, err := pull(t, ref, opts(newStore(t)), nil)
		if err != nil {
			t.Fatal(err)
		}
		img.same(t, got)
		if f.ranges != rangesNo {
			t.Errorf("ranges %v, want rangesNo", f.ranges)
		}
		if n := f.requests.Load(); n != int64(len(img.blobs)) {
			t.Errorf("%d blob requests, want one a blob (%d)", n, len(img.blobs))
		}
	})
	t.Run("cut in the middle", func(t *testing.T) {
		// The base layer's connection is cut at 1 MB: a blob resumed
		// where the server ignores ranges is read again from its start,
		// past the bytes it had.
		webProxy.Toxic(t, `{"type": "ext4pack_break", "attributes": {"after": 1000000, "conns": 1, "mode": "cut"}}`)
		o := opts(newStore(t))
		got, f, err := pull(t, ref, o, nil)
		if err != nil {
			t.Fatalf("%v\nretried:\n%s", err, retriedList(f))
		}
		img.same(t, got)
		checkStore(t, o.Cache)
		if f.retries.Load() == 0 || f.skipped.Load() == 0 {
			t.Errorf("no resume that read past what it had (%d bytes read past); retried:\n%s", f.skipped.Load(), retriedList(f))
		}
		t.Logf("%d requests, %d bytes read past", f.requests.Load(), f.skipped.Load())
	})
}

// TestFetchCache: what a cache spares, and what it must not.
func TestFetchCache(t *testing.T) {
	fx := newFixture(t)
	// An image sharing the first 4 of its 5 layers with fx's.
	img2 := makeImage(t, []uint64{1, 2, 3, 4, 6}, layerSizes)
	for i := range 4 {
		if img2.digest[i] != fx.img.digest[i] {
			t.Fatalf("layer %d is not shared", i+1)
		}
	}
	fx.reg.Push(t, "oci:"+img2.layout+":v1", "test/img:v2")
	store := newStore(t)
	got, _, err := pull(t, fx.ref, opts(store), nil)
	if err != nil {
		t.Fatal(err)
	}
	fx.img.same(t, got)

	// run pulls ref with the pull policy, and returns the warnings.
	run := func(t *testing.T, ref string, pol PullPolicy, want *testImage) []string {
		t.Helper()
		var warns []string
		var mu sync.Mutex
		o := opts(store)
		o.Pull = pol
		o.Warn = func(m string) {
			mu.Lock()
			warns = append(warns, m)
			mu.Unlock()
		}
		fx.reg.ResetLog()
		got, _, err := pull(t, ref, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		want.same(t, got)
		checkStore(t, store)
		return warns
	}
	t.Run("a second pull asks the registry nothing", func(t *testing.T) {
		run(t, fx.ref, PullMissing, fx.img)
		if n := fx.reg.Gets(); n != 0 {
			t.Errorf("%d requests to the registry, want none:\n%s", n, fx.reg.Log())
		}
	})
	t.Run("pull always asks for the manifest, not the blobs", func(t *testing.T) {
		run(t, fx.ref, PullAlways, fx.img)
		if m, b := fx.reg.Gets("/manifests/"), fx.reg.Gets("/blobs/"); m == 0 || b != 0 {
			t.Errorf("%d manifest and %d blob requests, want some and none", m, b)
		}
	})
	t.Run("pull never", func(t *testing.T) {
		run(t, fx.ref, PullNever, fx.img)
		if n := fx.reg.Gets(); n != 0 {
			t.Errorf("%d requests to the registry, want none", n)
		}
	})
	t.Run("an image sharing 4 of 5 layers fetches 1", func(t *testing.T) {
		run(t, fx.proxy.Host+"/test/img:v2", PullMissing, img2)
		layers := 0
		for _, d := range img2.digest {
			layers += fx.reg.Gets("/blobs/" + d)
		}
		if n := fx.reg.Gets("/blobs/" + img2.digest[4]); layers != 1 || n != 1 {
			t.Errorf("%d layer blob requests, %d of them for the new layer: want 1", layers, n)
		}
		t.Logf("blob requests: %d layer, %d in all (the config's)", layers, fx.reg.Gets("/blobs/"))
	})
	t.Run("corrupt cache files are caught and fetched again", func(t *testing.T) {
		truncated, flipped := store.Path(blobstore.Digest(fx.img.digest[0])), store.Path(blobstore.Digest(fx.img.digest[3]))
		if err := os.Truncate(truncated, int64(len(fx.img.blobs[0])/2)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(flipped)
		if err != nil {
			t.Fatal(err)
		}
		b[100] ^= 1
		if err := os.WriteFile(flipped, b, 0o600); err != nil {
			t.Fatal(err)
		}
		warns := run(t, fx.ref, PullMissing, fx.img)
		all := strings.Join(warns, "\n")
		if len(warns) != 2 || !strings.Contains(all, "layer 1 of 5") || !strings.Contains(all, truncated) || !strings.Contains(all, "layer 4 of 5") || !strings.Contains(all, flipped+" is corrupt") {
			t.Errorf("warnings:\n%s\nwant one for each of %s and %s", all, truncated, flipped)
		}
		for i, d := range fx.img.digest {
			n := fx.reg.Gets("/blobs/" + d)
			if (i == 0 || i == 3) != (n > 0) {
				t.Errorf("layer %d: %d requests", i+1, n)
			}
		}
	})
	t.Run("pull never without the blobs", func(t *testing.T) {
		o := opts(newStore(t))
		o.Pull = PullNever
		fx.reg.ResetLog()
		if _, _, err := pull(t, fx.ref, o, nil); err == nil || !strings.Contains(err.Error(), "has no manifest for "+fx.ref) {
			t.Errorf("empty cache: %v", err)
		}
		store.Delete(blobstore.Digest(fx.img.digest[2]))
		o.Cache = store
		_, _, err := pull(t, fx.ref, o, nil)
		if err == nil || !strings.Contains(err.Error(), "layer 3 of 5") || !strings.Contains(err.Error(), fx.img.digest[2]+" is not in the cache") {
			t.Errorf("a layer missing: %v", err)
		}
		if n := fx.reg.Gets(); n != 0 {
			t.Errorf("%d requests to the registry, want none", n)
		}
	})
	t.Run("offline: a digest reference, and pull never", func(t *testing.T) {
		run(t, fx.ref, PullMissing, fx.img) // layer 3 back in
		fx.reg.Stop()
		byDigest := fx.proxy.Host + "/test/img@" + fx.img.manifest
		run(t, byDigest, PullMissing, fx.img)
		run(t, byDigest, PullAlways, fx.img)
		run(t, fx.ref, PullNever, fx.img)
	})
}

// TestFetchTwoAtOnce: two pulls of one image into one cache at once, as
// two processes (each its own store, so its own locks): both get the
// image, and each blob is downloaded once.
func TestFetchTwoAtOnce(t *testing.T) {
	fx := newFixture(t)
	fx.proxy.Toxic(t, `{"type": "bandwidth", "attributes": {"rate": 2000}}`)
	dir := filepath.Join(t.TempDir(), "cache")
	var wg sync.WaitGroup
	var downloaded [2]int64
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := blobstore.Open(dir)
			if err != nil {
				t.Error(err)
				return
			}
			got, f, err := pull(t, fx.ref, opts(s), nil)
			if err != nil {
				t.Error(err)
				return
			}
			fx.img.same(t, got)
			downloaded[i], _ = f.progress()
		}()
	}
	wg.Wait()
	var total int64
	for _, b := range fx.img.blobs {
		total += int64(len(b))
	}
	if downloaded[0]+downloaded[1] != total {
		t.Errorf("downloaded %d + %d bytes, want %d in all: each blob once", downloaded[0], downloaded[1], total)
	}
	s, _ := blobstore.Open(dir)
	checkStore(t, s)
}

// TestFetchCap: a capped cache keeps the most recently used blobs: a
// second image evicts the first's, oldest first.
func TestFetchCap(t *testing.T) {
	fx := newFixture(t)
	other := makeImage(t, []uint64{21, 22, 23, 24, 25}, layerSizes)
	fx.reg.Push(t, "oci:"+other.layout+":v1", "test/other:v1")
	var size int64
	for _, b := range other.blobs {
		size += int64(len(b))
	}
	max := size + 200<<10 // room for other's config and manifest, not for fx's base layer
	store, err := blobstore.Open(filepath.Join(t.TempDir(), "cache"), blobstore.WithMaxSize(max))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pull(t, fx.ref, opts(store), nil); err != nil {
		t.Fatal(err)
	}
	got, _, err := pull(t, fx.proxy.Host+"/test/other:v1", opts(store), nil)
	if err != nil {
		t.Fatal(err)
	}
	other.same(t, got)
	have := checkStore(t, store)
	for i, d := range other.digest {
		if !have[d] {
			t.Errorf("the newer image's layer %d was evicted", i+1)
		}
	}
	if have[fx.img.digest[0]] {
		t.Error("the older image's base layer was kept")
	}
	if n, _ := store.Size(); n > max {
		t.Errorf("the cache holds %d bytes, over its %d cap", n, max)
	}
}

// TestFetchJobs: no more than Jobs blob requests are under way at once,
// and more than one is.
func TestFetchJobs(t *testing.T) {
	fx := newFixture(t)
	fx.proxy.Toxic(t, `{"type": "bandwidth", "attributes": {"rate": 2000}}`)
	ct := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	o := opts(newStore(t))
	o.Jobs = 3
	o.Transport = ct
	got, _, err := pull(t, fx.ref, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	fx.img.same(t, got)
	if ct.max < 2 || ct.max > 3 {
		t.Errorf("at most %d blob requests at once, want 2 or 3", ct.max)
	}
}

// countingTransport counts the blob requests under way: from their
// sending to their body's close.
type countingTransport struct {
	rt       http.RoundTripper
	mu       sync.Mutex
	now, max int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.Contains(req.URL.Path, "/blobs/") {
		return c.rt.RoundTrip(req)
	}
	c.add(1)
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		c.add(-1)
		return nil, err
	}
	resp.Body = &countedBody{ReadCloser: resp.Body, c: c}
	return resp, nil
}

func (c *countingTransport) add(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += n
	c.max = max(c.max, c.now)
}

type countedBody struct {
	io.ReadCloser
	c    *countingTransport
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.c.add(-1) })
	return b.ReadCloser.Close()
}
