package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/oracle"
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
	pax := func(h tar.Header) tar.Header {
		h.Format = tar.FormatPAX
		return h
	}
	gnu := func(h tar.Header) tar.Header {
		h.Format = tar.FormatGNU
		return h
	}
	return tarOf(t,
		tarMember{hdr: gnu(tar.Header{Name: "./" + long, Typeflag: tar.TypeReg, Mode: 0o644}), data: []byte("long name, before its parents\n")},
		tarMember{hdr: tar.Header{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o600}, data: []byte("first\n")},
		tarMember{hdr: tar.Header{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 0, Gid: 0}},
		tarMember{hdr: tar.Header{Name: "/etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644}, data: []byte("second wins\n")},
		tarMember{hdr: pax(tar.Header{Name: "usr/bin/ping", Typeflag: tar.TypeReg, Mode: 0o4755, ModTime: frac,
			PAXRecords: map[string]string{
				"SCHILY.xattr.security.capability": oracle.CapNetBindService,
				"SCHILY.xattr.user.bin":            "\x00\x01\xff\x00",
			}}), data: []byte("\x7fELF ping")},
		tarMember{hdr: pax(tar.Header{Name: "usr/bin/bsd", Typeflag: tar.TypeReg, Mode: 0o755,
			PAXRecords: map[string]string{"LIBARCHIVE.xattr.user.x%3Dy": "AAEC", "LIBARCHIVE.xattr.user.both": "AP8=", "SCHILY.xattr.user.both": "ignored: LIBARCHIVE wins"}}), data: []byte("bsd")},
		tarMember{hdr: gnu(tar.Header{Name: "usr/bin/" + strings.Repeat("l", 120), Typeflag: tar.TypeSymlink, Linkname: "../share/" + strings.Repeat("t", 150)})},
		tarMember{hdr: gnu(tar.Header{Name: "usr/bin/ping-link", Typeflag: tar.TypeLink, Linkname: "./usr/bin/ping"})},
		tarMember{hdr: gnu(tar.Header{Name: "usr/bin/long-link", Typeflag: tar.TypeLink, Linkname: "/" + long})},
		tarMember{hdr: tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 7, Gid: 8, ModTime: frac}},
		tarMember{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}},
		tarMember{hdr: tar.Header{Name: "dev/loop0", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 7, Devminor: 0, Gid: 6}},
		tarMember{hdr: tar.Header{Name: "run/initctl", Typeflag: tar.TypeFifo, Mode: 0o600}},
		tarMember{hdr: tar.Header{Name: "var/cache/old", Typeflag: tar.TypeReg, Mode: 0o644}, data: []byte("whited out\n")},
		tarMember{hdr: tar.Header{Name: "var/cache/.wh.old", Typeflag: tar.TypeReg}},
		tarMember{hdr: tar.Header{Name: "var/cache/.wh..wh..opq", Typeflag: tar.TypeReg}},
		tarMember{hdr: tar.Header{Name: "tmp", Typeflag: tar.TypeDir, Mode: 0o1777}},
		tarMember{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}},
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
	members := func(f tar.Format) []tarMember {
		ms := []tarMember{
			{hdr: tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, Format: f}},
			{hdr: tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Format: f}, data: []byte("root:x:0:0::/root:/bin/sh\n")},
			{hdr: tar.Header{Name: "etc/link", Typeflag: tar.TypeSymlink, Linkname: "passwd", Format: f}},
			{hdr: tar.Header{Name: "etc/hard", Typeflag: tar.TypeLink, Linkname: "etc/passwd", Format: f}},
			{hdr: tar.Header{Name: "dev/zero", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 5, Format: f}},
			{hdr: tar.Header{Name: "big/ids", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1000, Gid: 1000, Format: f}, data: oracle.Content("ids", 70000)},
		}
		if f != tar.FormatUSTAR {
			// Only PAX and GNU hold ids past 2^21 and 100-byte names.
			ms = append(ms,
				tarMember{hdr: tar.Header{Name: "big/" + strings.Repeat("n", 200), Typeflag: tar.TypeReg, Uid: 3000000, Gid: 3000001, Format: f}, data: []byte("x")})
		}
		return ms
	}
	for _, f := range []tar.Format{tar.FormatUSTAR, tar.FormatPAX, tar.FormatGNU} {
		t.Run(f.String(), func(t *testing.T) {
			p := writeTemp(t, "go.tar", tarOf(t, members(f)...))
			judgeImage(t, p, imageFromTar(t, p, false))
		})
	}
}

// rawBlock builds a 512-byte ustar header by hand, for the PAX sparse
// records archive/tar's Writer refuses to write.
func rawBlock(name string, typeflag byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b, name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x000000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00%011o\x00", size, oracle.DefaultMtime.Unix()))
	b[156] = typeflag
	copy(b[257:], "ustar\x0000")
	copy(b[148:], "        ")
	var sum int
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func padBlocks(p []byte) []byte {
	return append(p, make([]byte, (512-len(p)%512)%512)...)
}

func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec) + 1
	for len(strconv.Itoa(n))+len(rec) != n {
		n++
	}
	return strconv.Itoa(n) + rec
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
	body := append(padBlocks([]byte(sparseMap)), data...)
	recs := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", "data/sparse") + paxRecord("GNU.sparse.realsize", strconv.Itoa(size))
	var b bytes.Buffer
	b.Write(tarOf(t, tarMember{hdr: tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755}})[:512])
	b.Write(rawBlock("data/PaxHeaders/sparse", 'x', int64(len(recs))))
	b.Write(padBlocks([]byte(recs)))
	b.Write(rawBlock("data/GNUSparseFile.0/sparse", '0', int64(len(body))))
	b.Write(padBlocks(body))
	b.Write(make([]byte, 1024))
	return b.Bytes()
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
	without := writeTemp(t, "dir.tar", tarOf(t, tarMember{hdr: tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755}}))
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
