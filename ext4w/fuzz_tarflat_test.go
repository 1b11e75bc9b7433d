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
	"github.com/ext4pack/ext4pack/internal/tartest"
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

func tarflatSeeds(t testing.TB) [][]byte {
	pax := func(name, data string, kv ...string) tartest.Entry {
		return tartest.File(name, 0o644, data).In(tar.FormatPAX).PAX(kv...)
	}
	every := tartest.Bytes(t,
		tartest.Dir("./", 0o755),
		tartest.Dir("etc/", 0o755),
		tartest.File("etc/hostname", 0o644, "vm\n"),
		tartest.File("usr/lib/os-release", 0o644, "ID=fuzz\n"),
		tartest.Symlink("etc/os-release", "../usr/lib/os-release"),
		tartest.File("bin/tool", 0o4755, bytes.Repeat([]byte{0x7f, 'E', 'L', 'F'}, 3000)),
		tartest.Hardlink("bin/tool2", "bin/tool"),
		tartest.Char("dev/null", 0o644, 1, 3),
		tartest.Block("dev/sda", 0o644, 8, 0),
		tartest.Fifo("run/fifo", 0o644),
		tartest.Dir("tmp/", 0o1777),
		tartest.File("zeros", 0o644, make([]byte, 3*4096)),
		tartest.File("long/"+strings.Repeat("d", 120)+"/"+strings.Repeat("f", 200), 0o644, "x").In(tar.FormatGNU),
		tartest.Symlink("slow", strings.Repeat("t/", 60)).In(tar.FormatPAX),
	)
	// Times past 2038 and before 1970, with fractions, in PAX records.
	times := pax("x/times", "", "LIBARCHIVE.creationtime", "1700000000.5").Time(time.Unix(4102444800, 999999999))
	times.AccessTime = time.Unix(-101, 75e7) // -100.25
	xattrs := tartest.Bytes(t,
		pax("x/schily", "a", "SCHILY.xattr.user.a", "v\x00\xff", "SCHILY.xattr.security.capability", string(make([]byte, 20))),
		pax("x/libarchive", "", "LIBARCHIVE.xattr.user.b%20c", base64.StdEncoding.EncodeToString([]byte("bin\x00ary")),
			"SCHILY.xattr.user.b c", "ignored"),
		pax("x/big", "", "SCHILY.xattr.user.big", strings.Repeat("b", 3000), "SCHILY.xattr.trusted.t", "t"),
		pax("x/big2", "", "SCHILY.xattr.user.big", strings.Repeat("b", 3000), "SCHILY.xattr.trusted.t", "t"),
		times,
	)
	// ACLs go through tarflat's text parser.
	acls := tartest.Bytes(t,
		pax("acl", "", "SCHILY.acl.access", "user::rwx,user:1000:r-x,group::r-x,mask::r-x,other::r--"),
		tartest.Dir("dacl/", 0o644).In(tar.FormatPAX).PAX("SCHILY.acl.default", "user::rwx,group::r-x,other::---"),
	)
	rules := tartest.Bytes(t,
		tartest.File("a/b/c", 0o644, "first"),
		tartest.File("a/b/c", 0o644, "second, longer"),
		tartest.Dir("a/b", 0o700),
		tartest.Whiteout("a/.wh.b"),
		tartest.Whiteout("a/.wh..wh..opq"),
		tartest.File("d", 0o644, "file first"),
		tartest.Dir("d/", 0o644),
		tartest.File("lost+found", 0o644, "not a directory"),
		tartest.File("/abs/../x", 0o644, "x"),
	)
	var big []tartest.Entry
	for i := 0; i < 400; i++ {
		big = append(big, tartest.File(path.Join("big", strings.Repeat("n", i%200)+string(rune('a'+i%26))+string(rune('a'+i/26))), 0o644, ""))
	}
	seeds := [][]byte{every, xattrs, acls, rules, tartest.Bytes(t, big...), oracle.Gzip(t, every), oracle.Zstd(t, rules)}
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
// are not bugs (a bomb of zeros).
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
	}
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
			t.Skip("beyond the fuzz bounds")
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
			// buffers behind (TestCloseAfterErrorStopsWriter), 12 MiB an
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
