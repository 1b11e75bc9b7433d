package main

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// testdataDir holds the hand-made tars (see its README.md).
const testdataDir = "../../testdata"

// imageFromTar runs `ext4pack image` on the tar at tarPath, from the file
// or through standard input, and returns the image's path. The tar's
// bytes are what is fed; tarPath is only read.
func imageFromTar(t *testing.T, tarPath string, stdin bool, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rootfs.ext4")
	var code int
	var stderr string
	if stdin {
		f, err := os.Open(tarPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var feedErr error
		code, _, stderr, _, feedErr = runCLIStdin(t, f, append([]string{"image", "--rootfs-tar", "-", "--out", out}, extra...)...)
		if feedErr != nil {
			t.Errorf("feeding standard input: %v (ext4pack stopped reading early?)", feedErr)
		}
	} else {
		code, _, stderr = runCLI(t, append([]string{"image", "--rootfs-tar", tarPath, "--out", out}, extra...)...)
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if names := dirEntries(t, filepath.Dir(out)); len(names) != 1 || names[0] != "rootfs.ext4" {
		t.Errorf("the output directory holds %q, want only rootfs.ext4", names)
	}
	return out
}

// eachInput runs f as two subtests: the tar read from a file, and from
// standard input.
func eachInput(t *testing.T, f func(t *testing.T, stdin bool)) {
	t.Run("file", func(t *testing.T) { f(t, false) })
	t.Run("stdin", func(t *testing.T) { f(t, true) })
}

// TestImageTestdata takes each hand-made tar (GNU tar's v7, ustar, gnu
// and posix formats, old GNU and PAX 0.0, 0.1 and 1.0 sparse members,
// bsdtar's PAX with LIBARCHIVE.xattr records) through ext4pack image.
func TestImageTestdata(t *testing.T) {
	tars, err := filepath.Glob(filepath.Join(testdataDir, "*.tar"))
	if err != nil || len(tars) < 7 {
		t.Fatalf("testdata tars: %v, %v", tars, err)
	}
	for _, tarPath := range tars {
		t.Run(filepath.Base(tarPath), func(t *testing.T) {
			eachInput(t, func(t *testing.T, stdin bool) {
				judgeImage(t, tarPath, imageFromTar(t, tarPath, stdin))
			})
		})
	}
}

// trickyTar is issue 3's "done when" tar: duplicates, entries before
// their parents, missing parents, "./", "/" and bare names mixed, PAX
// xattrs (SCHILY binary, LIBARCHIVE), fractional mtimes, GNU long names
// and links, hardlinks, whiteouts, every entry type.
func trickyTar(t *testing.T) []byte {
	long := "usr/share/" + strings.Repeat("d", 110) + "/" + strings.Repeat("f", 180)
	frac := time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)
	return tartest.Bytes(t,
		tartest.File("./"+long, 0o644, "long name, before its parents\n").In(tar.FormatGNU),
		tartest.File("etc/hostname", 0o600, "first\n"),
		tartest.Dir("./etc/", 0o755),
		tartest.File("/etc/hostname", 0o644, "second wins\n"),
		tartest.File("usr/bin/ping", 0o4755, "\x7fELF ping").Time(frac).In(tar.FormatPAX).PAX(
			"SCHILY.xattr.security.capability", oracle.CapNetBindService,
			"SCHILY.xattr.user.bin", "\x00\x01\xff\x00"),
		tartest.File("usr/bin/bsd", 0o755, "bsd").In(tar.FormatPAX).PAX(
			"LIBARCHIVE.xattr.user.x%3Dy", "AAEC", "LIBARCHIVE.xattr.user.both", "AP8=", "SCHILY.xattr.user.both", "ignored: LIBARCHIVE wins"),
		// A symlink of mode 0, which the image keeps.
		tartest.Entry{Header: tar.Header{Name: "usr/bin/" + strings.Repeat("l", 120), Typeflag: tar.TypeSymlink, Linkname: "../share/" + strings.Repeat("t", 150), Format: tar.FormatGNU}},
		tartest.Hardlink("usr/bin/ping-link", "./usr/bin/ping").In(tar.FormatGNU),
		tartest.Hardlink("usr/bin/long-link", "/"+long).In(tar.FormatGNU),
		tartest.Dir("usr/", 0o750).Owner(7, 8).Time(frac),
		tartest.Char("dev/null", 0o666, 1, 3),
		tartest.Block("dev/loop0", 0o660, 7, 0).Owner(0, 6),
		tartest.Fifo("run/initctl", 0o600),
		tartest.File("var/cache/old", 0o644, "whited out\n"),
		tartest.Whiteout("var/cache/.wh.old"),
		tartest.Whiteout("var/cache/.wh..wh..opq"),
		tartest.Dir("tmp", 0o1777),
		tartest.Dir("./", 0o755),
	)
}

// TestImageTricky is issue 3's "done when": the tricky tar round-trips
// exactly, plain, gzip and zstd, from a file and from standard input.
func TestImageTricky(t *testing.T) {
	plain := trickyTar(t)
	plainPath := writeTemp(t, "tricky.tar", plain)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"plain", plain},
		{"gzip", oracle.Gzip(t, plain)},
		{"zstd", oracle.Zstd(t, plain)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, "tricky.tar."+tc.name, tc.data)
			eachInput(t, func(t *testing.T, stdin bool) {
				img := imageFromTar(t, p, stdin)
				// The oracle reads plain and gzip tars; the same plain tar
				// stands for the zstd one.
				judgeImage(t, plainPath, img)
			})
		})
	}
}

// TestImageGoFormats takes tars archive/tar writes in each of its formats
// through ext4pack image.
func TestImageGoFormats(t *testing.T) {
	members := func(f tar.Format) []tartest.Entry {
		es := []tartest.Entry{
			tartest.Dir("etc/", 0o755),
			tartest.File("etc/passwd", 0o644, "root:x:0:0::/root:/bin/sh\n"),
			{Header: tar.Header{Name: "etc/link", Typeflag: tar.TypeSymlink, Linkname: "passwd"}}, // mode 0
			tartest.Hardlink("etc/hard", "etc/passwd"),
			tartest.Char("dev/zero", 0o666, 1, 5),
			tartest.File("big/ids", 0o640, oracle.Content("ids", 70000)).Owner(1000, 1000),
		}
		if f != tar.FormatUSTAR {
			// Only PAX and GNU hold ids past 2^21 and 100-byte names.
			es = append(es, tartest.File("big/"+strings.Repeat("n", 200), 0, "x").Owner(3000000, 3000001))
		}
		for i := range es {
			es[i].Format = f
		}
		return es
	}
	for _, f := range []tar.Format{tar.FormatUSTAR, tar.FormatPAX, tar.FormatGNU} {
		t.Run(f.String(), func(t *testing.T) {
			p := tartest.Write(t, members(f)...)
			judgeImage(t, p, imageFromTar(t, p, false))
		})
	}
}

// sparseTar is a PAX 1.0 sparse member, as GNU tar --sparse
// --format=posix writes it: a 64 MiB file holding three 4 KiB chunks of
// data, at the start, in the middle and at the end.
func sparseTar(t *testing.T) []byte {
	const size, chunk = 64 << 20, 4096
	offsets := []int64{0, size / 2, size - chunk}
	sparseMap := strconv.Itoa(len(offsets)) + "\n"
	var data []byte
	for i, off := range offsets {
		sparseMap += fmt.Sprintf("%d\n%d\n", off, chunk)
		data = append(data, oracle.Content(fmt.Sprint("chunk", i), chunk)...)
	}
	body := append(tartest.Pad(sparseMap), data...)
	// archive/tar's Writer refuses GNU.sparse records: the blocks are
	// built by hand.
	mtime := oracle.DefaultMtime.Unix()
	return slices.Concat(
		tartest.Raw{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755, Mtime: mtime}.Block(),
		tartest.RawPAX('x', "GNU.sparse.major", "1", "GNU.sparse.minor", "0",
			"GNU.sparse.name", "data/sparse", "GNU.sparse.realsize", strconv.Itoa(size)),
		tartest.Raw{Name: "data/GNUSparseFile.0/sparse", Typeflag: tar.TypeReg, Size: int64(len(body)), Mtime: mtime}.Block(),
		tartest.Pad(body),
		tartest.End(),
	)
}

// allocated returns the bytes a file takes on disk.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestImageSparse checks that a sparse member's holes stay holes: in the
// image file (st_blocks), and in the file inside the image (debugfs's
// block count), while the data reads back whole (the mount comparison).
func TestImageSparse(t *testing.T) {
	withSparse := writeTemp(t, "sparse.tar", sparseTar(t))
	without := tartest.Write(t, tartest.Dir("data/", 0o755))
	eachInput(t, func(t *testing.T, stdin bool) {
		img := imageFromTar(t, withSparse, stdin)
		base := imageFromTar(t, without, stdin)
		st, err := os.Stat(img)
		if err != nil {
			t.Fatal(err)
		}
		a, b := allocated(t, img), allocated(t, base)
		t.Logf("image %d bytes long, %d allocated; without the 64 MiB sparse file %d allocated (+%d)", st.Size(), a, b, a-b)
		// Three 4 KiB chunks of data, and nothing for the holes.
		if a-b > 64<<10 {
			t.Errorf("the sparse file adds %d allocated bytes to the image, want about 12 KiB", a-b)
		}
		judgeImage(t, withSparse, img)
		debugfs := requireTool(t, "debugfs", "e2fsprogs")
		out, err := exec.Command(debugfs, "-R", "stat /data/sparse", img).CombinedOutput()
		if err != nil {
			t.Fatalf("debugfs: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`Blockcount: (\d+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no Blockcount in debugfs's output:\n%s", out)
		}
		// i_blocks counts 512-byte sectors: three 4 KiB blocks are 24, and
		// three extents fit in the inode without a tree block.
		if string(m[1]) != "24" {
			t.Errorf("the sparse file holds %s sectors in the image, want 24 (three 4 KiB blocks)", m[1])
		}
	})
}
