package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// region is bytes written into a test image; the rest of it is holes.
type region struct {
	off  int64
	data []byte
}

// imageCase describes a test image.
type imageCase struct {
	name    string
	size    int64
	regions []region
}

// randBytes returns n bytes that compress somewhat, like binaries do:
// random words from a small vocabulary mixed with random bytes. The seed
// makes them the same on every run.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	words := []string{"ext4", "pack", "\x7fELF", "bundle", "\x00\x00\x00\x01", "root", "usr/lib/", "GLIBC_2.34"}
	b := make([]byte, 0, n+16)
	for len(b) < n {
		if r.IntN(3) == 0 {
			b = append(b, byte(r.Uint32()))
			continue
		}
		b = append(b, words[r.IntN(len(words))]...)
	}
	return b[:n]
}

// imageCases are the images every round-trip test runs on.
func imageCases() []imageCase {
	const mib = 1 << 20
	zeroRun := append(append(randBytes(5, 64<<10), make([]byte, 256<<10)...), randBytes(6, 704<<10)...)
	return []imageCase{
		{
			name: "odd-offsets",
			size: 10*mib + 1234,
			regions: []region{
				{12345, randBytes(1, 100)},
				{3*mib + 7, randBytes(2, 70000)},
				{5 * mib, randBytes(3, 4096)},
				{10*mib + 234, randBytes(4, 1000)}, // ends the image, not block aligned
			},
		},
		{name: "all-hole", size: 8 * mib},
		{name: "zero-length", size: 0},
		{name: "data-at-very-end", size: mib + 3*4096, regions: []region{{mib + 3*4096 - 1, []byte{0xff}}}},
		// Zeros written as data, not left as holes: the map must not
		// depend on how the file system stored them.
		{name: "written-zeros", size: mib, regions: []region{{0, zeroRun}}},
		{name: "dense", size: 3*mib + 5, regions: []region{{0, randBytes(7, 3*mib+5)}}},
		{name: "tiny-unaligned", size: 5000, regions: []region{{0, randBytes(8, 5000)}}},
		{name: "hole-at-end-unaligned", size: mib + 100, regions: []region{{0, randBytes(9, 8192)}}},
		{name: "zero-tail-unaligned", size: 8192 + 100, regions: []region{{0, append(randBytes(10, 8192), make([]byte, 100)...)}}},
	}
}

// makeImage creates the image of c in dir, and returns it open for reading
// and writing, and its content.
func makeImage(t testing.TB, dir string, c imageCase) (*os.File, []byte) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, c.name+".img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(c.size); err != nil {
		t.Fatal(err)
	}
	content := make([]byte, c.size)
	for _, r := range c.regions {
		if _, err := f.WriteAt(r.data, r.off); err != nil {
			t.Fatal(err)
		}
		copy(content[r.off:], r.data)
	}
	return f, content
}

// refExtents is the sparse map of content worked out the simple way: every
// 4 KiB block that is not all zeros is data.
func refExtents(content []byte) []extent {
	var ext []extent
	for off := 0; off < len(content); off += 4096 {
		b := content[off:min(off+4096, len(content))]
		if !bytes.Equal(b, make([]byte, len(b))) {
			ext = addExtent(ext, int64(off), int64(len(b)))
		}
	}
	return ext
}

var testManifest = Manifest{
	Name:        "test-image",
	Distro:      "debian",
	Arch:        ArchX86_64,
	Description: "a <test> & bundle",
	CreatedBy:   "ext4pack test",
}

var testTime = time.Unix(1700000000, 0)

// writeBundle writes a bundle of img to a file in dir and returns its path
// and the Write result.
func writeBundle(t testing.TB, dir string, img *os.File, opts ...Option) (string, Result) {
	t.Helper()
	path := filepath.Join(dir, filepath.Base(img.Name())+".tar.zst")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	opts = append([]Option{WithModTime(testTime)}, opts...)
	res, err := Write(context.Background(), out, img, testManifest, opts...)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path, res
}

// decompress returns the tar archive inside the bundle at path.
func decompress(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("decompressing %s: %v", path, err)
	}
	return b
}

// member is one tar member as archive/tar reads it.
type member struct {
	hdr  *tar.Header
	data []byte
}

// readMembers reads every member of the tar archive in b.
func readMembers(t testing.TB, b []byte) []member {
	t.Helper()
	var ms []member
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return ms
		}
		if err != nil {
			t.Fatalf("archive/tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("archive/tar: reading %s: %v", hdr.Name, err)
		}
		ms = append(ms, member{hdr, data})
	}
}

// allocated returns the bytes the file system allocated for path.
func allocated(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return allocatedBytes(fi)
}

// holesSupported reports whether the file system under dir stores holes.
func holesSupported(t testing.TB, dir string) bool {
	t.Helper()
	f, err := os.CreateTemp(dir, "hole")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	return allocated(t, f.Name()) == 0
}

// checkSparse fails when the file at path, a restored content, takes more
// space than its data blocks need. The slack covers file system metadata
// such as ext4's extent tree blocks, which st_blocks counts.
func checkSparse(t testing.TB, path string, content []byte) {
	t.Helper()
	var want int64
	for _, e := range refExtents(content) {
		want += (e.len + 4095) &^ 4095
	}
	const slack = 64 << 10
	if got := allocated(t, path); got > want+slack {
		t.Errorf("%s: %d bytes allocated, want at most %d: holes were not restored", path, got, want+slack)
	}
}
