package inflate

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// benchData is the benchmark's gzip file: $EXT4PACK_INFLATE_BENCH, else
// the boot test's Debian rootfs tar (what make bench measures) through
// gzip -6, made once per process. It is real layer data: binaries,
// libraries and text, as in a container image's layers.
var benchData = sync.OnceValues(func() ([]byte, error) {
	if p := os.Getenv("EXT4PACK_INFLATE_BENCH"); p != "" {
		return os.ReadFile(p)
	}
	cache := os.Getenv("EXT4PACK_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		cache = filepath.Join(home, ".cache", "ext4pack-boottest")
	}
	tar, err := os.Open(filepath.Join(cache, "rootfs-bookworm-minbase-systemd-sysv-iproute2.tar"))
	if err != nil {
		return nil, err
	}
	defer tar.Close()
	cmd := exec.Command("gzip", "-6", "-c", "-n")
	cmd.Stdin = tar
	return cmd.Output()
})

// BenchmarkGunzip decodes the Debian rootfs tar, gzip -6, with inflate,
// klauspost/compress/gzip (what tarflat used before) and compress/gzip:
// MB/s of output. With -count the three take turns, so that a load on the
// machine falls on all of them.
func BenchmarkGunzip(b *testing.B) {
	data, err := benchData()
	if err != nil {
		b.Skipf("no Debian rootfs tar to gzip (set EXT4PACK_INFLATE_BENCH to a gzip file): %v", err)
	}
	zr, err := stdgzip.NewReader(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decoder=inflate", func(b *testing.B) {
		b.SetBytes(n)
		z := new(GzipReader)
		for b.Loop() {
			z.Reset(bytes.NewReader(data))
			if _, err := io.Copy(io.Discard, z); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder=klauspost", func(b *testing.B) {
		b.SetBytes(n)
		z, _ := kgzip.NewReader(bytes.NewReader(data))
		for b.Loop() {
			z.Reset(bytes.NewReader(data))
			if _, err := io.Copy(io.Discard, z); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder=stdlib", func(b *testing.B) {
		b.SetBytes(n)
		z, _ := stdgzip.NewReader(bytes.NewReader(data))
		for b.Loop() {
			z.Reset(bytes.NewReader(data))
			if _, err := io.Copy(io.Discard, z); err != nil {
				b.Fatal(err)
			}
		}
	})
}
