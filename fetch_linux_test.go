package ext4pack_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack"
	"github.com/ext4pack/ext4pack/imagesrc"
	"github.com/ext4pack/ext4pack/internal/ocitest"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// The pulls of issue 18, judged by their images: a registry image built
// through each fault of the link or the registry must be byte for byte
// the image of the same layers read from an OCI layout, and e2fsck must
// find it clean; the failures must leave no output, no partial download,
// and nothing unverified in the cache. The image's layers hold files of
// incompressible bytes, and are fetched in 256 KiB pieces, so that a few
// MB make many ranges.

// pullLayers are the test image's layers, base first: directories, big
// files (split into ranges), a symlink, a hardlink, and upper layers
// that replace and remove the base's files. seed makes another image.
func pullLayers(t *testing.T, seed string, last string) [][]byte {
	base := oracle.NewTar(t)
	base.Dir("usr", 0o755).Time(t0)
	base.Dir("usr/lib", 0o755).Time(t0)
	base.Dir("etc", 0o755).Time(t0)
	base.File("usr/lib/big", 0o644, oracle.Content(seed+"big", 3<<20)).Time(t0)
	base.File("usr/lib/medium", 0o755, oracle.Content(seed+"medium", 700<<10)).Time(t0)
	base.Hardlink("usr/lib/medium.link", "usr/lib/medium")
	base.Symlink("etc/alias", "../usr/lib/medium").Time(t0)
	base.File("etc/gone", 0o600, []byte("removed by layer 2")).Owner(5, 6).Time(t0)
	l2 := oracle.NewTar(t)
	l2.File("etc/.wh.gone", 0o644, nil).Time(t1)
	l2.File("usr/lib/second", 0o644, oracle.Content(seed+"second", 1200<<10)).Time(t1)
	l3 := oracle.NewTar(t)
	l3.File("usr/lib/medium", 0o755, oracle.Content(seed+"medium2", 600<<10)).Time(t1)
	l4 := oracle.NewTar(t)
	l4.Dir("opt", 0o755).Time(t2)
	l4.File("opt/four", 0o644, oracle.Content(seed+"four", 300<<10)).Time(t2)
	l5 := oracle.NewTar(t)
	l5.File("opt/five", 0o644, oracle.Content(last, 100<<10)).Time(t2)
	return [][]byte{base.Bytes(), l2.Bytes(), l3.Bytes(), l4.Bytes(), l5.Bytes()}
}

// pullImage is an image in an OCI layout, and its image as built from
// the layout: the image every pull of it must give.
type pullImage struct {
	layout  string
	want    []byte
	digests []string // the layer blobs'
}

func newPullImage(t *testing.T, seed, last string) *pullImage {
	t.Helper()
	lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
	var layers []ocitest.Layer
	for _, tar := range pullLayers(t, seed, last) {
		layers = append(layers, ocitest.Layer{Tar: tar, Compression: "gzip"})
	}
	lay.Tag("v1", lay.Image(ocitest.Image{Layers: layers}))
	lay.Close()
	p := &pullImage{layout: lay.Dir}
	img, _ := buildFrom(t, "oci:"+lay.Dir+":v1", ext4pack.Options{})
	var err error
	if p.want, err = os.ReadFile(img); err != nil {
		t.Fatal(err)
	}
	p.digests = ocitest.LayerDigests(t, lay.Dir, "v1")
	return p
}

// tuneFetch fetches in 256 KiB pieces with short waits, for t.
func tuneFetch(t *testing.T, backoff time.Duration) {
	t.Cleanup(ext4pack.SetFetchTune(func(o *imagesrc.Options) {
		o.PieceSize = 256 << 10
		o.Backoff = backoff
	}))
}

// pullInto builds ref into a new file with the fetch options and returns
// its path, or the error and the (empty) directory it was to go to.
func pullInto(t *testing.T, ref string, f ext4pack.FetchOptions, progress func(ext4pack.Progress)) (string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rootfs.ext4")
	o := ext4pack.Options{Fetch: f, Progress: progress, Warn: func(m string) { t.Log("warning: ", m) }}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := ext4pack.BuildImage(ctx, ext4pack.Source{Image: ref}, out, o)
	return out, err
}

// samePull checks that the image at path is the layout's, and clean.
func (p *pullImage) samePull(t *testing.T, path string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, p.want) {
		t.Errorf("the pulled image differs from the layout's (%d bytes, want %d)", len(got), len(p.want))
	}
	oracle.Fsck(t, path)
}

// verifiedCache checks that the cache in dir holds no partial download
// and only blobs whose bytes are their digest, and returns them.
func verifiedCache(t *testing.T, dir string) map[string]bool {
	t.Helper()
	entries, err := ext4pack.ListCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, "sha256", strings.TrimPrefix(e.Digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); "sha256:"+hex.EncodeToString(sum[:]) != e.Digest {
			t.Errorf("the cache holds %s, whose bytes are not its digest", e.Digest)
		}
		have[e.Digest] = true
	}
	ingest, _ := os.ReadDir(filepath.Join(dir, "ingest"))
	for _, e := range ingest {
		t.Errorf("a partial download is left in the cache: ingest/%s", e.Name())
	}
	return have
}

// once returns a progress callback that runs fn, on a goroutine of its
// own, when the build has read its first bytes.
func once(fn func()) func(ext4pack.Progress) {
	var o sync.Once
	return func(p ext4pack.Progress) {
		if p.Done > 0 {
			o.Do(func() { go fn() })
		}
	}
}

// TestPullFaults: faults of the link and of the registry in the middle of
// a pull; each build ends with the layout's image.
func TestPullFaults(t *testing.T) {
	img := newPullImage(t, "pull", "five")
	reg := ocitest.StartRegistry(t, "", "")
	reg.Push(t, "oci:"+img.layout+":v1", "test/img:v1")
	redirected, web := ocitest.StartRegistryRedirected(t)
	redirected.Push(t, "oci:"+img.layout+":v1", "test/img:v1")
	for _, tc := range []struct {
		name   string
		via    *ocitest.Registry // default: reg
		resets bool              // the proxy's connections end with a reset
		toxics []string
		stall  time.Duration
		during func() // run once the build has read its first bytes
	}{
		{name: "every connection cut after 700 kB", toxics: []string{`{"type": "limit_data", "attributes": {"bytes": 700000}}`}},
		{
			name:   "connections reset in the middle of ranges",
			resets: true,
			toxics: []string{`{"type": "ext4pack_break", "attributes": {"after": 100000, "conns": 3, "mode": "cut"}}`},
		},
		{
			name:   "stalled past the timeout",
			toxics: []string{`{"type": "ext4pack_break", "attributes": {"after": 400000, "conns": 2, "mode": "hold"}}`},
			stall:  500 * time.Millisecond,
		},
		{name: "a registry that ignores Range", via: redirected},
		{
			name:   "restarted in the middle of the pull",
			toxics: []string{`{"type": "bandwidth", "attributes": {"rate": 1000}}`},
			during: func() {
				reg.Stop()
				time.Sleep(300 * time.Millisecond)
				reg.Start(t)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tuneFetch(t, 300*time.Millisecond)
			via := reg
			if tc.via != nil {
				via = tc.via
			}
			proxy := ocitest.StartProxy(t, via.Host)
			if tc.resets {
				proxy.Resets(t)
			}
			for _, x := range tc.toxics {
				proxy.Toxic(t, x)
			}
			if tc.via != nil {
				// The blobs come from the redirect's server: cut its
				// connection to the base layer once, at 1 MB.
				web.Toxic(t, `{"type": "ext4pack_break", "attributes": {"after": 1000000, "conns": 1, "mode": "cut"}}`)
			}
			var progress func(ext4pack.Progress)
			if tc.during != nil {
				progress = once(tc.during)
			}
			cache := filepath.Join(t.TempDir(), "cache")
			start := time.Now()
			out, err := pullInto(t, proxy.Host+"/test/img:v1", ext4pack.FetchOptions{CacheDir: cache, Jobs: 4, StallTimeout: tc.stall}, progress)
			t.Logf("%v", time.Since(start).Round(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			img.samePull(t, out)
			have := verifiedCache(t, cache)
			for i, d := range img.digests {
				if !have[d] {
					t.Errorf("layer %d is not cached", i+1)
				}
			}
		})
	}
}

// TestPullFailsCleanly: a registry gone for good in the middle of a pull,
// and a blob whose bytes are not its digest: each a clear error, no
// output, no partial download, and only verified blobs in the cache.
func TestPullFailsCleanly(t *testing.T) {
	img := newPullImage(t, "pull", "five")
	t.Run("the registry gone for good", func(t *testing.T) {
		tuneFetch(t, 50*time.Millisecond)
		reg := ocitest.StartRegistry(t, "", "")
		reg.Push(t, "oci:"+img.layout+":v1", "test/img:v1")
		proxy := ocitest.StartProxy(t, reg.Host)
		proxy.Toxic(t, `{"type": "bandwidth", "attributes": {"rate": 1000}}`)
		cache := filepath.Join(t.TempDir(), "cache")
		out, err := pullInto(t, proxy.Host+"/test/img:v1", ext4pack.FetchOptions{CacheDir: cache}, once(reg.Stop))
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "layer ") || !strings.Contains(err.Error(), "fetching the blob failed at byte ") || !strings.Contains(err.Error(), "tries in a row: ") {
			t.Errorf("error %v: want one naming the layer, the byte and the cause", err)
		}
		requireNothingAt(t, out)
		verifiedCache(t, cache)
	})
	t.Run("a blob that is not its digest", func(t *testing.T) {
		reg := ocitest.StartRegistry(t, "", "")
		reg.Push(t, "oci:"+img.layout+":v1", "test/img:v1")
		p := reg.BlobPath(img.digests[1])
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x08
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cache := filepath.Join(t.TempDir(), "cache")
		out, err := pullInto(t, reg.Host+"/test/img:v1", ext4pack.FetchOptions{CacheDir: cache}, nil)
		if !errors.Is(err, imagesrc.ErrDigest) || !strings.Contains(err.Error(), "layer 2 of 5") {
			t.Errorf("error %v: want ErrDigest naming layer 2 of 5", err)
		}
		requireNothingAt(t, out)
		if verifiedCache(t, cache)[img.digests[1]] {
			t.Error("the tampered blob was cached")
		}
	})
}

// requireNothingAt checks that a failed build left nothing beside out.
func requireNothingAt(t *testing.T, out string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}

// TestPullCache: what the cache spares a second build, the builds that
// share it, and its cap, each build the layout's image.
func TestPullCache(t *testing.T) {
	tuneFetch(t, 100*time.Millisecond)
	img := newPullImage(t, "pull", "five")
	reg := ocitest.StartRegistry(t, "", "")
	reg.Push(t, "oci:"+img.layout+":v1", "test/img:v1")
	ref := reg.Host + "/test/img:v1"
	cache := filepath.Join(t.TempDir(), "cache")
	f := ext4pack.FetchOptions{CacheDir: cache}

	// layerGets counts the requests for the image's layer blobs.
	layerGets := func(im *pullImage) int {
		n := 0
		for _, d := range im.digests {
			n += reg.Gets("/blobs/" + d)
		}
		return n
	}
	reg.ResetLog()
	out, err := pullInto(t, ref, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	img.samePull(t, out)
	cold := layerGets(img)
	t.Logf("a cold build: %d layer blob requests", cold)

	t.Run("a second build makes no request", func(t *testing.T) {
		reg.ResetLog()
		out, err := pullInto(t, ref, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		img.samePull(t, out)
		if n := reg.Gets(); n != 0 {
			t.Errorf("%d requests to the registry, want none:\n%s", n, reg.Log())
		}
	})
	t.Run("an image sharing 4 of 5 layers fetches 1", func(t *testing.T) {
		other := newPullImage(t, "pull", "another fifth layer")
		for i := range 4 {
			if other.digests[i] != img.digests[i] {
				t.Fatalf("layer %d is not shared", i+1)
			}
		}
		reg.Push(t, "oci:"+other.layout+":v1", "test/img:v2")
		reg.ResetLog()
		out, err := pullInto(t, reg.Host+"/test/img:v2", f, nil)
		if err != nil {
			t.Fatal(err)
		}
		other.samePull(t, out)
		if n, last := layerGets(other), reg.Gets("/blobs/"+other.digests[4]); n != 1 || last != 1 {
			t.Errorf("%d layer blob requests, %d of them for the new layer: want 1", n, last)
		}
		t.Logf("blob requests: %d in all, the config's included", reg.Gets("/blobs/"))
	})
	t.Run("a truncated and a flipped cache file are fetched again", func(t *testing.T) {
		trunc := filepath.Join(cache, "sha256", strings.TrimPrefix(img.digests[0], "sha256:"))
		flip := filepath.Join(cache, "sha256", strings.TrimPrefix(img.digests[2], "sha256:"))
		if err := os.Truncate(trunc, 1000); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(flip)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-100] ^= 0x80
		os.WriteFile(flip, b, 0o600)
		var warns []string
		var mu sync.Mutex
		reg.ResetLog()
		out := filepath.Join(t.TempDir(), "rootfs.ext4")
		_, err = ext4pack.BuildImage(context.Background(), ext4pack.Source{Image: ref}, out, ext4pack.Options{Fetch: f, Warn: func(m string) {
			mu.Lock()
			warns = append(warns, m)
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		img.samePull(t, out)
		all := strings.Join(warns, "\n")
		if !strings.Contains(all, "layer 1 of 5") || !strings.Contains(all, trunc) || !strings.Contains(all, "layer 3 of 5") || !strings.Contains(all, flip+" is corrupt") {
			t.Errorf("warnings:\n%s\nwant the two files named", all)
		}
		for i, d := range img.digests {
			if n := reg.Gets("/blobs/" + d); (i == 0 || i == 2) != (n > 0) {
				t.Errorf("layer %d: %d requests", i+1, n)
			}
		}
		verifiedCache(t, cache)
	})
	t.Run("two builds at once", func(t *testing.T) {
		shared := filepath.Join(t.TempDir(), "cache")
		reg.ResetLog()
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := pullInto(t, ref, ext4pack.FetchOptions{CacheDir: shared}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				img.samePull(t, out)
			}()
		}
		wg.Wait()
		if n := layerGets(img); n != cold {
			t.Errorf("%d layer blob requests for the two, want %d, one build's: each blob fetched once", n, cold)
		}
		verifiedCache(t, shared)
	})
	t.Run("pull never", func(t *testing.T) {
		never := ext4pack.FetchOptions{CacheDir: cache, Pull: "never"}
		reg.ResetLog()
		out, err := pullInto(t, ref, never, nil)
		if err != nil {
			t.Fatal(err)
		}
		img.samePull(t, out)
		empty := ext4pack.FetchOptions{CacheDir: filepath.Join(t.TempDir(), "empty"), Pull: "never"}
		out, err = pullInto(t, ref, empty, nil)
		if err == nil || !strings.Contains(err.Error(), "has no manifest for "+ref) {
			t.Errorf("an empty cache: %v", err)
		}
		requireNothingAt(t, out)
		os.Remove(filepath.Join(cache, "sha256", strings.TrimPrefix(img.digests[3], "sha256:")))
		out, err = pullInto(t, ref, never, nil)
		if err == nil || !strings.Contains(err.Error(), "layer 4 of 5") || !strings.Contains(err.Error(), img.digests[3]+" is not in the cache") {
			t.Errorf("layer 4 missing: %v", err)
		}
		requireNothingAt(t, out)
		if n := reg.Gets(); n != 0 {
			t.Errorf("%d requests to the registry, want none", n)
		}
	})
	t.Run("the cap evicts the oldest", func(t *testing.T) {
		other := newPullImage(t, "cap", "cap")
		reg.Push(t, "oci:"+other.layout+":v1", "test/other:v1")
		var size int64
		for _, d := range other.digests {
			size += int64(len(readBlob(t, other.layout, d)))
		}
		capped := ext4pack.FetchOptions{CacheDir: cache, CacheMaxSize: size + 100<<10}
		out, err := pullInto(t, reg.Host+"/test/other:v1", capped, nil)
		if err != nil {
			t.Fatal(err)
		}
		other.samePull(t, out)
		have := verifiedCache(t, cache)
		for i, d := range other.digests {
			if !have[d] {
				t.Errorf("the new image's layer %d was evicted", i+1)
			}
		}
		if have[img.digests[0]] {
			t.Error("the older image's base layer was kept")
		}
		var total int64
		list, _ := ext4pack.ListCache(cache)
		for _, e := range list {
			total += e.Size
		}
		if total > capped.CacheMaxSize {
			t.Errorf("the cache holds %d bytes, over its %d cap", total, capped.CacheMaxSize)
		}
	})
}

func readBlob(t *testing.T, layout, digest string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
