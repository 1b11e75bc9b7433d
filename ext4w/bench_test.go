package ext4w

import (
	"fmt"
	"testing"
	"time"
)

// discard is an Output that keeps nothing, so benchmarks measure the
// writer's own work rather than the disk.
type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }
func (discard) Truncate(int64) error                     { return nil }

var benchTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// BenchmarkDataCopy streams 64 MiB files through Write: zero detection,
// allocation, batching and the content digest.
func BenchmarkDataCopy(b *testing.B) {
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	b.SetBytes(64 << 20)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w, _ := NewWriter(discard{})
		w.Create("f", &File{Type: TypeRegular, Mode: 0o644, Size: 64 << 20, Mtime: benchTime})
		for k := 0; k < 64; k++ {
			if _, err := w.Write(data); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSmallFiles writes 10,000 one-block files in 100 directories:
// per-entry costs, the inode table and directory building.
func BenchmarkSmallFiles(b *testing.B) {
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("usr/share/d%03d/file-%05d.txt", i%100, i)
	}
	data := []byte("a small file\n")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w, _ := NewWriter(discard{})
		for _, n := range names {
			if err := w.Create(n, &File{Type: TypeRegular, Mode: 0o644, Size: int64(len(data)), Mtime: benchTime}); err != nil {
				b.Fatal(err)
			}
			w.Write(data)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(names)), "ns/entry")
}

// BenchmarkHugeDirectory builds a 100,000-entry htree directory.
func BenchmarkHugeDirectory(b *testing.B) {
	names := make([]string, 100000)
	for i := range names {
		names[i] = fmt.Sprintf("big/entry-%06d", i)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w, _ := NewWriter(discard{})
		for _, n := range names {
			if err := w.Create(n, &File{Type: TypeRegular, Mode: 0o644, Mtime: benchTime}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDirHash(b *testing.B) {
	seed := [4]uint32{1, 2, 3, 4}
	for i := 0; i < b.N; i++ {
		dirHash("libsystemd-shared-252.so", &seed)
	}
}

func BenchmarkCRC32cBlock(b *testing.B) {
	blk := make([]byte, blockSize)
	b.SetBytes(blockSize)
	for i := 0; i < b.N; i++ {
		crc32c(0x12345678, blk)
	}
}

func BenchmarkInodeMarshal(b *testing.B) {
	n := inode{mode: sIFREG | 0o644, links: 1, size: 12345, ino: 12,
		ext: &inodeExt{xattrs: []xattr{{index: xattrIndexSecurity, name: "capability", value: make([]byte, 20)}}}}
	buf := make([]byte, inodeSize)
	var ib [60]byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		clear(buf)
		n.marshal(buf, &ib, 0xdeadbeef, inodeFlagExtents, 8)
	}
}
