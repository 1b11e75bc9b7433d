package ext4w_test

// fuzz_tarflat_test.go: FuzzTarflat mutates tar bytes and feeds them
// through tarflat into an ext4w image, as ext4pack image does. It must
// never panic; it ends either in a clean error (a tarflat.EntryError or
// ErrFormat) or in an image that passes the self-check (and, on the seed
// corpus, e2fsck). It lives here rather than in tarflat because the
// self-check is an ext4w test helper.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/tarflat"
)

// Bounds on one fuzz input, so that an execution stays in milliseconds:
// what a tar may decompress to, and the file data its headers may
// declare (a sparse member can declare terabytes in a few bytes, which
// tarflat then expands as zeros; see the report on issue 9).
const (
	fuzzMaxTar  = 16 << 20
	fuzzMaxData = 64 << 20
)

// tarSeed writes members with archive/tar.
type tarSeed struct {
	hdr  tar.Header
	data []byte
}

func makeTar(t testing.TB, ms ...tarSeed) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		h := m.hdr
		if h.ModTime.IsZero() {
			h.ModTime = time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(m.data))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tarflatSeeds(t testing.TB) [][]byte {
	pax := func(name string, recs map[string]string) tar.Header {
		return tar.Header{Name: name, Typeflag: tar.TypeReg, Format: tar.FormatPAX, PAXRecords: recs}
	}
	every := makeTar(t,
		tarSeed{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}},
		tarSeed{hdr: tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}},
		tarSeed{hdr: tar.Header{Name: "etc/hostname", Typeflag: tar.TypeReg}, data: []byte("vm\n")},
		tarSeed{hdr: tar.Header{Name: "usr/lib/os-release", Typeflag: tar.TypeReg}, data: []byte("ID=fuzz\n")},
		tarSeed{hdr: tar.Header{Name: "etc/os-release", Typeflag: tar.TypeSymlink, Linkname: "../usr/lib/os-release"}},
		tarSeed{hdr: tar.Header{Name: "bin/tool", Typeflag: tar.TypeReg, Mode: 0o4755}, data: bytes.Repeat([]byte{0x7f, 'E', 'L', 'F'}, 3000)},
		tarSeed{hdr: tar.Header{Name: "bin/tool2", Typeflag: tar.TypeLink, Linkname: "bin/tool"}},
		tarSeed{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}},
		tarSeed{hdr: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8}},
		tarSeed{hdr: tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo}},
		tarSeed{hdr: tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}},
		tarSeed{hdr: tar.Header{Name: "zeros", Typeflag: tar.TypeReg}, data: make([]byte, 3*4096)},
		tarSeed{hdr: tar.Header{Name: "long/" + strings.Repeat("d", 120) + "/" + strings.Repeat("f", 200), Typeflag: tar.TypeReg, Format: tar.FormatGNU}, data: []byte("x")},
		tarSeed{hdr: tar.Header{Name: "slow", Typeflag: tar.TypeSymlink, Linkname: strings.Repeat("t/", 60), Format: tar.FormatPAX}},
	)
	xattrs := makeTar(t,
		tarSeed{hdr: pax("x/schily", map[string]string{"SCHILY.xattr.user.a": "v\x00\xff", "SCHILY.xattr.security.capability": string(make([]byte, 20))}), data: []byte("a")},
		tarSeed{hdr: pax("x/libarchive", map[string]string{"LIBARCHIVE.xattr.user.b%20c": base64.StdEncoding.EncodeToString([]byte("bin\x00ary")),
			"SCHILY.xattr.user.b c": "ignored"})},
		tarSeed{hdr: pax("x/big", map[string]string{"SCHILY.xattr.user.big": strings.Repeat("b", 3000), "SCHILY.xattr.trusted.t": "t"})},
		tarSeed{hdr: pax("x/big2", map[string]string{"SCHILY.xattr.user.big": strings.Repeat("b", 3000), "SCHILY.xattr.trusted.t": "t"})},
		tarSeed{hdr: pax("x/times", map[string]string{"LIBARCHIVE.creationtime": "1700000000.5", "atime": "-100.25", "mtime": "4102444800.999999999"})},
	)
	// ACLs go through tarflat's text parser (skipped while
	// avoidKnownBugs holds: TestBugInvalidACLKept).
	acls := makeTar(t,
		tarSeed{hdr: pax("acl", map[string]string{"SCHILY.acl.access": "user::rwx,user:1000:r-x,group::r-x,mask::r-x,other::r--"})},
		tarSeed{hdr: tar.Header{Name: "dacl/", Typeflag: tar.TypeDir, Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.acl.default": "user::rwx,group::r-x,other::---"}}},
	)
	rules := makeTar(t,
		tarSeed{hdr: tar.Header{Name: "a/b/c", Typeflag: tar.TypeReg}, data: []byte("first")},
		tarSeed{hdr: tar.Header{Name: "a/b/c", Typeflag: tar.TypeReg}, data: []byte("second, longer")},
		tarSeed{hdr: tar.Header{Name: "a/b", Typeflag: tar.TypeDir, Mode: 0o700}},
		tarSeed{hdr: tar.Header{Name: "a/.wh.b", Typeflag: tar.TypeReg}},
		tarSeed{hdr: tar.Header{Name: "a/.wh..wh..opq", Typeflag: tar.TypeReg}},
		tarSeed{hdr: tar.Header{Name: "d", Typeflag: tar.TypeReg}, data: []byte("file first")},
		tarSeed{hdr: tar.Header{Name: "d/", Typeflag: tar.TypeDir}},
		tarSeed{hdr: tar.Header{Name: "lost+found", Typeflag: tar.TypeReg}, data: []byte("not a directory")},
		tarSeed{hdr: tar.Header{Name: "/abs/../x", Typeflag: tar.TypeReg}, data: []byte("x")},
	)
	var big []tarSeed
	for i := 0; i < 400; i++ {
		big = append(big, tarSeed{hdr: tar.Header{Name: path.Join("big", strings.Repeat("n", i%200)+string(rune('a'+i%26))+string(rune('a'+i/26))), Typeflag: tar.TypeReg}})
	}
	seeds := [][]byte{every, xattrs, acls, rules, makeTar(t, big...), oracle.Gzip(t, every), oracle.Zstd(t, rules)}
	tars, _ := filepath.Glob("../testdata/*.tar")
	for _, p := range tars {
		if b, err := os.ReadFile(p); err == nil {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

// decompress undoes gzip or zstd, reading at most fuzzMaxTar bytes; ok is
// false for a stream past that.
func decompress(in []byte) ([]byte, bool) {
	var r io.Reader = bytes.NewReader(in)
	switch {
	case bytes.HasPrefix(in, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return in, true
		}
		r = zr
	case bytes.HasPrefix(in, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(fuzzMaxTar))
		if err != nil {
			return in, true
		}
		defer zr.Close()
		r = zr
	default:
		return in, true
	}
	out, _ := io.ReadAll(io.LimitReader(r, fuzzMaxTar+1))
	return out, len(out) <= fuzzMaxTar
}

// tooCostly reports whether an input would take long for reasons that
// are not bugs (a bomb of zeros), or would only find again a bug a
// TestBug test already shows.
func tooCostly(in []byte) bool {
	raw, ok := decompress(in)
	if !ok {
		return true
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var data int64
	for {
		h, err := tr.Next() // skips the data without expanding holes
		if err != nil {
			return false
		}
		data += max(h.Size, 0)
		if data > fuzzMaxData {
			return true
		}
		if avoidKnownBugs && knownBugHeader(h) {
			return true
		}
	}
}

// knownBugHeader reports a header that reaches a known writer bug: an
// xattr set bigger than a block (TestBugXattrsOverflowBlock), an ACL
// (TestBugInvalidACLKept), a hardlink replacing a directory above its
// target (TestBugLinkOverTargetsAncestor).
func knownBugHeader(h *tar.Header) bool {
	total := 0
	for k, v := range h.PAXRecords {
		switch {
		case strings.HasPrefix(k, "SCHILY.acl."), strings.Contains(k, "posix_acl"):
			return true
		case strings.HasPrefix(k, "SCHILY.xattr."), strings.HasPrefix(k, "LIBARCHIVE.xattr."):
			total += 16 + len(k) + len(v) + 8
		}
	}
	if total > 3900 {
		return true
	}
	if h.Typeflag == tar.TypeLink {
		name, e1 := tarflat.Clean(h.Name)
		target, e2 := tarflat.Clean(h.Linkname)
		if e1 == nil && e2 == nil && (name == "." || strings.HasPrefix(target, name+"/")) {
			return true
		}
	}
	return false
}

// fillCurrentFile writes a hole until the file being written has all its
// bytes: WriteHole refuses more than the rest without writing anything,
// so halving lengths find the rest in a few calls, however big it is (a
// sparse member cut short can leave terabytes).
func fillCurrentFile(w *ext4w.Writer) {
	for n := int64(1) << 62; n > 0; n /= 2 {
		for w.WriteHole(n) == nil {
		}
	}
}

func FuzzTarflat(f *testing.F) {
	for _, s := range tarflatSeeds(f) {
		f.Add(s)
	}
	judge := !fuzzing()
	f.Fuzz(func(t *testing.T, in []byte) {
		if tooCostly(in) {
			t.Skip("beyond the fuzz bounds, or a known bug")
		}
		img := filepath.Join(t.TempDir(), "img")
		out, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		w, err := ext4w.NewWriter(out, ext4w.WithSalt([]byte("fuzz")))
		if err != nil {
			t.Fatal(err)
		}
		r := tarflat.NewReader(bytes.NewReader(in))
		defer r.Close()
		_, err = tarflat.Copy(w, r)
		if err != nil {
			var ee *tarflat.EntryError
			if !errors.As(err, &ee) && !errors.Is(err, tarflat.ErrFormat) {
				t.Fatalf("an error of no kind: %T %v", err, err)
			}
			if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("an error message that is not one line: %q", msg)
			}
			// What came before the error must still make a good image.
			// A file cut short is first filled up with zeros: Close
			// after a short write would leave the Writer's goroutine and
			// buffers behind (TestBugCloseAfterErrorLeaks), 12 MiB an
			// input, which a fuzz worker soon runs out of memory on.
			fillCurrentFile(w)
		}
		if err := w.Close(); err != nil {
			// No fixed size: the image is sized to fit at Close.
			t.Fatalf("Close: %v", err)
		}
		ext4w.CheckImage(t, img)
		if judge {
			oracle.Fsck(t, img)
		}
	})
}
