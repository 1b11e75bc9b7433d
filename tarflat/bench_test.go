package tarflat

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/ext4pack/ext4pack/internal/tartest"
)

// benchTar is a tar of n small files with PAX xattrs on every tenth, the
// shape of a rootfs tar's metadata-heavy part.
func benchTar(b *testing.B, n int) []byte {
	b.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := bytes.Repeat([]byte("x"), 300)
	for i := range n {
		h := &tar.Header{Name: fmt.Sprintf("usr/share/doc/pkg%04d/file%d", i/20, i), Typeflag: tar.TypeReg, Mode: 0o644,
			Size: int64(len(data)), ModTime: tartest.Mtime}
		if i%10 == 0 {
			h.PAXRecords = map[string]string{"SCHILY.xattr.user.x": "value"}
		}
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return buf.Bytes()
}

// BenchmarkDecode reads every header and every byte of data, with the
// decoder and, as the baseline in the same run, with archive/tar.
func BenchmarkDecode(b *testing.B) {
	in := benchTar(b, 10000)
	b.Run("tarflat", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			s := &tarStream{br: bufio.NewReaderSize(bytes.NewReader(in), 1<<20)}
			for {
				_, err := s.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				for {
					p, err := s.peek()
					if err != nil {
						break
					}
					s.done(len(p))
				}
			}
		}
	})
	b.Run("archive-tar", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		buf := make([]byte, 1<<20)
		for b.Loop() {
			tr := tar.NewReader(bufio.NewReaderSize(bytes.NewReader(in), 1<<20))
			for {
				_, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				io.CopyBuffer(io.Discard, tr, buf)
			}
		}
	})
}
