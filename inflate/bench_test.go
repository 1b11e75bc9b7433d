package inflate

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"os"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

func benchInput(b *testing.B) ([]byte, int64) {
	p := os.Getenv("INFLATE_BENCH_GZ")
	if p == "" {
		p = "/tmp/w21/a.gz"
	}
	data, err := os.ReadFile(p)
	if err != nil {
		b.Skip(err)
	}
	zr, _ := stdgzip.NewReader(bytes.NewReader(data))
	n, _ := io.Copy(io.Discard, zr)
	return data, n
}

func BenchmarkGunzip(b *testing.B) {
	data, n := benchInput(b)
	b.Run("inflate", func(b *testing.B) {
		b.SetBytes(n)
		z := new(GzipReader)
		for b.Loop() {
			z.Reset(bytes.NewReader(data))
			io.Copy(io.Discard, z)
		}
	})
	b.Run("klauspost", func(b *testing.B) {
		b.SetBytes(n)
		z, _ := kgzip.NewReader(bytes.NewReader(data))
		for b.Loop() {
			z.Reset(bytes.NewReader(data))
			io.Copy(io.Discard, z)
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(n)
		z, _ := stdgzip.NewReader(bytes.NewReader(data))
		for b.Loop() {
			z.Reset(bytes.NewReader(data))
			io.Copy(io.Discard, z)
		}
	})
}
