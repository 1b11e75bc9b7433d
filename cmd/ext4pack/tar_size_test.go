package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// streamTar writes a tar of files (name -> size) to a pipe as it is read,
// so that nothing holds the whole tar: data blocks are a pattern that is
// never all zeros, unless zero is set.
func streamTar(files []string, size func(name string) int64, zero func(name string) bool) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		block := bytes.Repeat([]byte("data"), 1<<14) // 64 KiB
		zeros := make([]byte, len(block))
		err := func() error {
			for _, name := range files {
				n := size(name)
				h := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: n, ModTime: oracle.DefaultMtime}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				src := block
				if zero != nil && zero(name) {
					src = zeros
				}
				for n > 0 {
					k := min(n, int64(len(src)))
					if _, err := tw.Write(src[:k]); err != nil {
						return err
					}
					n -= k
				}
			}
			return tw.Close()
		}()
		pw.CloseWithError(err)
	}()
	return pr
}

// TestImageSizeTooSmall: with a --size too small, ext4pack reads the
// whole tar from standard input to count, says how much it needs in all,
// exits 1 and leaves nothing.
func TestImageSizeTooSmall(t *testing.T) {
	outDir := t.TempDir()
	files := []string{"a", "b", "c"}
	src := streamTar(files, func(string) int64 { return 40 << 20 }, nil)
	code, _, stderr, fed, feedErr := runCLIStdin(t, src, "image", "--rootfs-tar", "-", "--out", filepath.Join(outDir, "img"), "--size", "64M")
	t.Log(strings.TrimSpace(stderr))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if feedErr != nil || fed < 120<<20 {
		t.Errorf("ext4pack read %d bytes of the tar (%v); it must read it all to count", fed, feedErr)
	}
	m := regexp.MustCompile(`--size 64M is too small: the tar needs at least (\d+) MiB, the image has 64 MiB \(the first entry that did not fit is "b"\)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("the message does not say how much the tar needs")
	}
	if need, _ := strconv.Atoi(m[1]); need < 120 || need > 130 {
		t.Errorf("needs %d MiB, want about 120 (three 40 MiB files and metadata)", need)
	}
	requireEmpty(t, outDir)

	// The size the message gives is enough.
	out := filepath.Join(outDir, "img")
	src = streamTar(files, func(string) int64 { return 40 << 20 }, nil)
	code, _, stderr, _, _ = runCLIStdin(t, src, "image", "--rootfs-tar", "-", "--out", out, "--size", m[1]+"M")
	if code != 0 {
		t.Fatalf("with --size %sM as the message advises: exit %d: %s", m[1], code, stderr)
	}
	oracle.Fsck(t, out)
}

// TestImageInodesTooSmall: too few --inodes is an error saying how many
// are needed.
func TestImageInodesTooSmall(t *testing.T) {
	var files []string
	for i := range 200 {
		files = append(files, fmt.Sprintf("f%03d", i))
	}
	outDir := t.TempDir()
	src := streamTar(files, func(string) int64 { return 1 }, nil)
	code, _, stderr, _, feedErr := runCLIStdin(t, src, "image", "--rootfs-tar", "-", "--out", filepath.Join(outDir, "img"), "--inodes", "50")
	t.Log(strings.TrimSpace(stderr))
	if code != 1 || feedErr != nil {
		t.Errorf("exit %d (feeding: %v), want 1", code, feedErr)
	}
	m := regexp.MustCompile(`not enough inodes: the tar needs at least (\d+)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatal("the message does not say how many inodes the tar needs")
	}
	if need, _ := strconv.Atoi(m[1]); need < 211 {
		t.Errorf("needs %d inodes, want at least 211 (200 files and ext4's 11 reserved)", need)
	}
	requireEmpty(t, outDir)
}

// TestImageSizedFromStdin: without --size, an image from standard input
// is sized from the content, 1.5x what it needs rounded up to a MiB,
// in the one pass over the stream.
func TestImageSizedFromStdin(t *testing.T) {
	outDir := t.TempDir()
	out := filepath.Join(outDir, "img")
	src := streamTar([]string{"a", "b"}, func(string) int64 { return 30 << 20 }, nil)
	code, _, stderr, _, feedErr := runCLIStdin(t, src, "image", "--rootfs-tar", "-", "--out", out)
	if code != 0 || feedErr != nil {
		t.Fatalf("exit %d (feeding: %v): %s", code, feedErr, stderr)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("60 MiB of data gives a %d MiB image", st.Size()>>20)
	if st.Size()%(1<<20) != 0 || st.Size() < 90<<20 || st.Size() > 105<<20 {
		t.Errorf("image of %d bytes; want 1.5x (60 MiB and metadata), in whole MiB", st.Size())
	}
	oracle.Fsck(t, out)
}
