package main

// robust_limits_test.go: hostile inputs. Each must end, in bounded time
// and memory, in a clear error or a correct image: a tar claiming an
// exbibyte file, a million (by hand: ten million) empty entries, a
// 1 MiB name, a tree 4,096 levels deep, and xattrs bigger than a block.

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// TestLimitHugeFileClaim: headers that claim more than ext4 holds are
// refused at once, without reading on for data that will not come.
func TestLimitHugeFileClaim(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []string
	}{
		{"1 EiB regular file", paxTar("huge", map[string]string{"size": strconv.FormatInt(1<<60, 10)}, nil),
			[]string{`tar entry "huge"`, "16 TiB"}},
		{"the largest int64 size", paxTar("huge", map[string]string{"size": strconv.FormatInt(1<<63-1, 10)}, nil),
			[]string{`tar entry "huge"`, "16 TiB"}},
		{"a size past int64", paxTar("huge", map[string]string{"size": "99999999999999999999"}, nil),
			[]string{`tar entry "huge" (at byte 0)`, `PAX record size="99999999999999999999"`}},
		{"1 EiB sparse file", hugeSparseTar(1 << 60), []string{`tar entry`, "16 TiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothCommands(t, func(t *testing.T, args func(in, out string) []string) {
				outDir := t.TempDir()
				var code int
				var stderr string
				took := withTimeout(t, 30*time.Second, "ext4pack", func() {
					code, _, stderr, _, _ = runCLIStdin(t, bytes.NewReader(tc.in), args("-", filepath.Join(outDir, "out"))...)
				})
				t.Logf("%v: %s", took.Round(time.Millisecond), strings.TrimSpace(stderr))
				oneLine(t, code, stderr, tc.want...)
				requireEmpty(t, outDir)
			})
		})
	}
}

// TestSparseBomb: a PAX sparse member of 15 TiB is 7 KiB of tar and a
// valid file. tarflat once got it from archive/tar as 15 TiB of zeros,
// which ext4w then scanned for holes: about 40 minutes. Holes now go to
// ext4w as holes, so it takes no longer than its data.
func TestSparseBomb(t *testing.T) {
	outDir := t.TempDir()
	var code int
	var stderr string
	withTimeout(t, time.Minute, "ext4pack on a 15 TiB sparse member", func() {
		code, _, stderr, _, _ = runCLIStdin(t, bytes.NewReader(hugeSparseTar(15<<40)), "image", "--rootfs-tar", "-", "--out", filepath.Join(outDir, "out"))
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	img := filepath.Join(outDir, "out")
	oracle.Fsck(t, img)
	// The file has its size, and its data at the end: the last block
	// maps to a data block that holds the 4 KiB of "s".
	stat, err := exec.Command("debugfs", "-R", "stat big", img).CombinedOutput()
	if err != nil || !strings.Contains(string(stat), fmt.Sprintf("Size: %d", int64(15<<40))) {
		t.Fatalf("debugfs stat big: %v\n%.600s", err, stat)
	}
	last := (15<<40)/4096 - 1
	bmap, err := exec.Command("debugfs", "-R", fmt.Sprintf("bmap big %d", last), img).Output()
	if err != nil {
		t.Fatalf("debugfs bmap: %v", err)
	}
	phys, err := strconv.ParseInt(strings.TrimSpace(string(bmap)), 10, 64)
	if err != nil || phys == 0 {
		t.Fatalf("the last block of big maps to %q", bmap)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blk := make([]byte, 4096)
	if _, err := f.ReadAt(blk, phys*4096); err != nil || !bytes.Equal(blk, bytes.Repeat([]byte("s"), 4096)) {
		t.Errorf("the last block of big holds %.40q (%v)", blk, err)
	}
}

// manyEntries streams a tar of n empty files, in directories of 1,000,
// from a generator: the tar is never stored.
func manyEntries(n int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		h := tar.Header{Typeflag: tar.TypeReg, Mode: 0o644, ModTime: oracle.DefaultMtime, Format: tar.FormatUSTAR}
		var err error
		for i := 0; i < n && err == nil; i++ {
			h.Name = fmt.Sprintf("d%05d/f%03d", i/1000, i%1000)
			err = tw.WriteHeader(&h)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// runMeasured runs the binary with stdin from r and returns its exit
// code, stderr, peak RSS and wall time.
func runMeasured(t *testing.T, bin string, r io.Reader, args ...string) (int, string, int64, time.Duration) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = r
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak, err := peakRSS(cmd)
	return exitOf(err), stderr.String(), peak, time.Since(start)
}

// TestLimitManyEntries streams half a million empty files through the
// real binary: the image must be right, and memory and time stay within
// a bound per entry. A million took 16 s here, too much of the suite's
// budget; EXT4PACK_ENTRIES=10000000 runs issue 9's ten million by hand
// (see the issue 9 report for what it measured).
func TestLimitManyEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	if runtime.GOOS != "linux" {
		t.Skip("peak memory is read from /proc")
	}
	n := 500000
	if s := os.Getenv("EXT4PACK_ENTRIES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		n = v
	}
	bin := buildBinary(t)
	out := filepath.Join(t.TempDir(), "many.img")
	code, stderr, peak, took := runMeasured(t, bin, manyEntries(n), "image", "--rootfs-tar", "-", "--out", out)
	t.Logf("%d empty entries: %v, peak RSS %d MiB (%d bytes an entry)", n, took.Round(time.Millisecond), peak>>20, peak/int64(n))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// ext4w keeps under 300 bytes an entry; allow 500 and a fixed
	// 64 MiB, so that a leak or a copy of the tar shows.
	if limit := int64(n)*500 + 64<<20; peak > limit {
		t.Errorf("peak RSS %d MiB, more than %d MiB for %d entries", peak>>20, limit>>20, n)
	}
	if took > time.Duration(n)*60*time.Microsecond {
		t.Errorf("%v for %d entries", took, n)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image: %d MiB", st.Size()>>20)
	if n <= 1000000 {
		oracle.Fsck(t, out)
	}
}

// TestLimitLongNames: a 1 MiB name is refused with archive/tar's limit
// on PAX headers, or the 255-byte component limit; a path just under
// 1 MiB made of 255-byte components (3,900 levels) is a correct image.
func TestLimitLongNames(t *testing.T) {
	deep := strings.Repeat(strings.Repeat("c", 255)+"/", 3900) + "file"
	for _, tc := range []struct {
		name string
		in   []byte
		want []string // nil: a good image
	}{
		{"1 MiB name", paxTar("x", map[string]string{"path": strings.Repeat("n", 1<<20)}, nil), []string{"tar header at byte 0"}},
		{"one component just under 1 MiB", paxTar("x", map[string]string{"path": strings.Repeat("n", 1<<20-100)}, nil),
			[]string{"a name component is 1048476 bytes, the limit is 255"}},
		{"1 MiB symlink target", paxTarType("x", tar.TypeSymlink, map[string]string{"linkpath": strings.Repeat("t", 1<<20-100)}, nil),
			[]string{`tar entry "x"`, "symlink target is 1048476 bytes, the limit is 4095"}},
		{"3,900 levels of 255 bytes", paxTar("x", map[string]string{"path": deep}, []byte("deep")), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outDir := t.TempDir()
			out := filepath.Join(outDir, "out")
			var code int
			var stderr string
			took := withTimeout(t, 60*time.Second, "ext4pack", func() {
				code, _, stderr, _, _ = runCLIStdin(t, bytes.NewReader(tc.in), "image", "--rootfs-tar", "-", "--out", out)
			})
			t.Logf("%v: %.300s", took.Round(time.Millisecond), strings.TrimSpace(stderr))
			if tc.want != nil {
				oneLine(t, code, stderr, tc.want...)
				requireEmpty(t, outDir)
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			oracle.Fsck(t, out)
		})
	}
}

// TestLimitDeepTree: 4,096 levels of directories, each with its own
// entry, a file at the bottom; then the same tree removed again by a
// whiteout of its top, which unlinks it recursively.
func TestLimitDeepTree(t *testing.T) {
	const depth = 4096
	build := func(whiteout bool) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		p := ""
		for i := 0; i < depth; i++ {
			p += "d/"
			if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: oracle.DefaultMtime, Format: tar.FormatPAX}); err != nil {
				t.Fatal(err)
			}
		}
		tw.WriteHeader(&tar.Header{Name: p + "bottom", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6, ModTime: oracle.DefaultMtime, Format: tar.FormatPAX})
		tw.Write([]byte("bottom"))
		if whiteout {
			tw.WriteHeader(&tar.Header{Name: ".wh.d", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: oracle.DefaultMtime})
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	for _, whiteout := range []bool{false, true} {
		t.Run(fmt.Sprintf("whiteout=%v", whiteout), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "deep.img")
			var code int
			var stderr string
			took := withTimeout(t, 60*time.Second, "ext4pack", func() {
				code, _, stderr, _, _ = runCLIStdin(t, bytes.NewReader(build(whiteout)), "image", "--rootfs-tar", "-", "--out", out)
			})
			t.Logf("%v", took.Round(time.Millisecond))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			oracle.Fsck(t, out)
			res, err := oracle.RunFsck(out)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf(" %d/", depth+12)
			if whiteout {
				want = " 11/"
			}
			if !strings.Contains(res.Output, want) {
				t.Errorf("e2fsck counts other than %q inodes in use: %s", want, res.Output)
			}
		})
	}
}

// TestLimitBigXattr: an xattr bigger than a block is refused, naming
// the entry; ext4 without ea_inode keeps every xattr in one block.
func TestLimitBigXattr(t *testing.T) {
	for _, tc := range []struct {
		name string
		recs map[string]string
		want []string
	}{
		{"5000 bytes", map[string]string{"SCHILY.xattr.user.big": strings.Repeat("v", 5000)}, []string{`tar entry "f"`, "more than one block holds"}},
		{"64 KiB, Linux's largest", map[string]string{"SCHILY.xattr.user.big": strings.Repeat("v", 65536)}, []string{`tar entry "f"`, "more than one block holds"}},
		{"1 MiB", map[string]string{"SCHILY.xattr.user.big": strings.Repeat("v", 1<<20)}, []string{"tar header at byte 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothCommands(t, func(t *testing.T, args func(in, out string) []string) {
				outDir := t.TempDir()
				var code int
				var stderr string
				withTimeout(t, 30*time.Second, "ext4pack", func() {
					code, _, stderr, _, _ = runCLIStdin(t, bytes.NewReader(paxTar("f", tc.recs, []byte("x"))), args("-", filepath.Join(outDir, "out"))...)
				})
				t.Log(strings.TrimSpace(stderr))
				oneLine(t, code, stderr, tc.want...)
				requireEmpty(t, outDir)
			})
		})
	}
}

// TestXattrsTogetherOverBlock: xattrs that each fit a block but not
// together made ext4w panic in Close (TestXattrsOverABlockRefused): the
// real binary died with a Go stack trace, exit 2, and left its temporary
// file, since a panic runs no cleanup. Fixed in 645900e.
func TestXattrsTogetherOverBlock(t *testing.T) {
	bin := buildBinary(t)
	recs := map[string]string{}
	for i := 0; i < 5; i++ {
		recs[fmt.Sprintf("SCHILY.xattr.user.x%d", i)] = strings.Repeat("v", 1000)
	}
	outDir := t.TempDir()
	code, stderr, _, _ := runMeasured(t, bin, bytes.NewReader(paxTar("f", recs, []byte("x"))), "image", "--rootfs-tar", "-", "--out", filepath.Join(outDir, "out"))
	oneLine(t, code, stderr, `"f"`)
	requireEmpty(t, outDir)
}

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestLimitEndlessTrailer: a valid tar followed by an endless stream of
// zeros, plain and as zstd (which makes terabytes from megabytes), is a
// good image and a warning: what follows the end-of-archive marker is
// read up to a bound, not to its end.
func TestLimitEndlessTrailer(t *testing.T) {
	b, err := os.ReadFile(smallTar(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, compressed := range []bool{false, true} {
		t.Run(fmt.Sprintf("zstd=%v", compressed), func(t *testing.T) {
			src := io.MultiReader(bytes.NewReader(b), zeros{})
			in := src
			if compressed {
				pr, pw := io.Pipe()
				go func() {
					enc, _ := zstd.NewWriter(pw, zstd.WithEncoderLevel(zstd.SpeedFastest))
					_, err := io.Copy(enc, src)
					pw.CloseWithError(errors.Join(err, enc.Close()))
				}()
				defer pr.Close()
				in = pr
			}
			out := filepath.Join(t.TempDir(), "out")
			var code int
			var stderr string
			var fed int64
			withTimeout(t, time.Minute, "ext4pack on an endless input", func() {
				code, _, stderr, fed, _ = runCLIStdin(t, in, "image", "--rootfs-tar", "-", "--out", out)
			})
			t.Logf("fed %d MiB: %s", fed>>20, strings.TrimSpace(stderr))
			if code != 0 || !strings.Contains(stderr, "not read to its end") {
				t.Fatalf("exit %d, want 0 and a warning: %s", code, stderr)
			}
			oracle.Fsck(t, out)
		})
	}
}
