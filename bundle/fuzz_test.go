package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// FuzzInspect feeds mutated bundles to what `ext4pack inspect` runs on a
// bundle: ReadManifest and ExtractRootfs. Neither may panic or hang, memory
// stays bounded (a window over MaxWindowSize, a manifest over 1 MiB and a
// rootfs over MaxRootfsSize are refused), and an extraction that succeeds
// must have written exactly the image its manifest describes. A check that
// refuses images over 1 MiB stands in for inspect's ext4 check, which
// bounds the hashing the same way: an image is hashed only when its start
// says it is as large as it claims.
//
// The seeds are bundles Write makes of small images, at several levels
// and frame sizes, and the hostile ones of TestExtractHostile. Run it with
//
//	go test -run '^$' -fuzz FuzzInspect -fuzztime 10m -timeout 0 ./bundle/
func FuzzInspect(f *testing.F) {
	dir := f.TempDir()
	for i, c := range []struct {
		img  imageCase
		opts []Option
	}{
		{imageCase{name: "small", size: 16 << 10, regions: []region{{5000, randBytes(41, 3000)}}}, nil},
		{imageCase{name: "holes", size: 256 << 10, regions: []region{{64 << 10, randBytes(42, 9000)}, {200 << 10, []byte("end")}}},
			[]Option{WithLevel(zstd.SpeedFastest)}},
		{imageCase{name: "frames", size: 192 << 10, regions: []region{{0, randBytes(43, 192<<10)}}},
			[]Option{WithFrameSize(MinFrameSize), WithLevel(zstd.SpeedBetterCompression)}},
		{imageCase{name: "unaligned", size: 8192 + 700, regions: []region{{8192, randBytes(44, 700)}}}, []Option{WithLevel(zstd.SpeedDefault)}},
	} {
		img, _ := makeImage(f, dir, c.img)
		path, _ := writeBundle(f, dir, img, c.opts...)
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if i == 0 {
			// The same bundle as a plain tar compressed by hand: one
			// frame without a content size.
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(enc.EncodeAll(decompress(f, path), nil))
		}
	}
	const tib = int64(1) << 40
	m := testManifest
	m.Rootfs, m.RootfsSizeBytes, m.RootfsSHA256 = RootfsName, 15*tib, hex.EncodeToString(make([]byte, 32))
	f.Add(hostileBundle(f, m, scanResult{size: 15 * tib}, nil))

	out, err := os.Create(filepath.Join(dir, "extracted"))
	if err != nil {
		f.Fatal(err)
	}
	defer out.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		// A hang is a finding: crash the worker, so that the fuzzer
		// keeps the input, rather than wait for -fuzztime.
		hang := time.AfterFunc(10*time.Second, func() { panic("FuzzInspect: one input ran over 10 s") })
		defer hang.Stop()
		mr, errManifest := ReadManifest(bytes.NewReader(b))
		m, err := ExtractRootfs(context.Background(), bytes.NewReader(b), out, WithRootfsCheck(smallImages))
		if err != nil {
			return
		}
		if errManifest != nil || mr != m {
			t.Fatalf("ExtractRootfs read manifest %+v, ReadManifest %+v (%v)", m, mr, errManifest)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("ExtractRootfs returned an invalid manifest: %v", err)
		}
		h := sha256.New()
		if _, err := out.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(h, out)
		if err != nil {
			t.Fatal(err)
		}
		if n != m.RootfsSizeBytes || hex.EncodeToString(h.Sum(nil)) != m.RootfsSHA256 {
			t.Fatalf("extracted %d bytes with SHA-256 %x; the manifest says %d, %s", n, h.Sum(nil), m.RootfsSizeBytes, m.RootfsSHA256)
		}
	})
}

// smallImages is FuzzInspect's stand-in for inspect's ext4 check.
func smallImages(head []byte, size int64) error {
	if size > 1<<20 {
		return errors.New("over 1 MiB")
	}
	return nil
}
