package ext4pack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// bigTar is a rootfs tar of one file of n random bytes, which neither the
// image's holes nor the compressor make small.
func bigTar(t *testing.T, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(20, 20))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	mt := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(n), ModTime: mt}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCancelLeavesNothing is SPEC "Output files" for Go callers and for
// the CLI's signals, which cancel the context: BuildImage and MakeBundle,
// cancelled in each phase, return an error that wraps context.Canceled,
// soon, and only once they have removed every temporary file they made.
// While the tar streams in, the cancel comes as a read waits for a writer
// that has stalled, as `docker export | ext4pack` does when docker hangs.
func TestCancelLeavesNothing(t *testing.T) {
	in := bigTar(t, 24<<20)
	for _, tc := range []struct {
		name   string
		bundle bool
		stall  bool   // the tar comes through a pipe that stalls after 8 MiB
		stage  string // else: cancel at the first report of this stage
	}{
		{"image, the tar stalls", false, true, ""},
		{"bundle, the tar stalls", true, true, ""},
		{"bundle, hashing", true, false, "hashing"},
		{"bundle, compressing", true, false, "compressing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var src Source
			read := make(chan struct{}) // closed once 8 MiB were read from the stalling pipe
			var once sync.Once
			if tc.stall {
				pr, pw := io.Pipe()
				defer pw.Close()
				go pw.Write(in[:8<<20])
				src = Source{Tar: pr, TarName: "the pipe"}
			} else {
				src = Source{Tar: bytes.NewReader(in)}
			}
			o := Options{Arch: "x86_64", Progress: func(p Progress) {
				switch {
				case tc.stall && strings.HasPrefix(p.Stage, "reading") && p.Done >= 8<<20:
					once.Do(func() { close(read) })
				case !tc.stall && p.Stage == tc.stage:
					cancel()
				}
			}}
			if tc.stall {
				go func() {
					<-read
					// The next read waits for the writer, which never
					// writes again.
					time.Sleep(100 * time.Millisecond)
					cancel()
				}()
			}
			done := make(chan error, 1)
			go func() {
				var err error
				if tc.bundle {
					o.Bundle = &BundleOptions{Name: "cancel", NoAgents: true, Compression: "fastest"}
					_, err = MakeBundle(ctx, src, filepath.Join(dir, "cancel.tar.zst"), o)
				} else {
					_, err = BuildImage(ctx, src, filepath.Join(dir, "rootfs.ext4"), o)
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error %v, want one that wraps context.Canceled", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no return 30 s after the cancel")
			}
			if names, _ := os.ReadDir(dir); len(names) != 0 {
				t.Errorf("left behind: %v", names)
			}
		})
	}
}
