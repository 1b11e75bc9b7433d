package tarflat

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/tartest"
)

// The judge of tarflat's own tar decoder is archive/tar, written by
// others: on every tar both read, they must agree on every header field
// ext4pack uses and on every byte of content. Where they may differ on
// purpose, streamRecord normalises, and the comment there says why.

// streamRecord is what both readers must agree on for one entry.
type streamRecord struct {
	Typeflag              byte
	Name, Linkname        string
	Size, Mode            int64
	Uid, Gid              int
	ModTime, Atime, Ctime time.Time
	Devmajor, Devminor    int64
	PAX                   map[string]string
	Data                  []byte
}

func (r streamRecord) String() string {
	type plain streamRecord // without this String method
	d := r.Data
	r.Data = nil
	return fmt.Sprintf("%+v data=%d bytes %.32q", plain(r), len(d), d)
}

func record(h *tar.Header, data []byte) streamRecord {
	r := streamRecord{Typeflag: h.Typeflag, Name: h.Name, Linkname: h.Linkname, Size: h.Size, Mode: h.Mode,
		Uid: h.Uid, Gid: h.Gid, ModTime: h.ModTime, Atime: h.AccessTime, Ctime: h.ChangeTime, Data: data}
	if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
		// ours reads device fields only where they mean something.
		r.Devmajor, r.Devminor = h.Devmajor, h.Devminor
	}
	if h.Typeflag == tar.TypeRegA {
		// archive/tar turns NUL into '0' or, for a name ending in "/",
		// '5'; convert does the same from the name.
		r.Typeflag = tar.TypeReg
		if strings.HasSuffix(h.Name, "/") {
			r.Typeflag = tar.TypeDir
		}
	}
	if r.Typeflag == tar.TypeDir && h.Typeflag != tar.TypeDir {
		r.Size = 0
	}
	if len(h.PAXRecords) > 0 {
		r.PAX = maps.Clone(h.PAXRecords)
	}
	// star's atime and ctime fields: zero means "none" to ours, the epoch
	// to archive/tar.
	for _, t := range []*time.Time{&r.Atime, &r.Ctime} {
		if t.Equal(time.Unix(0, 0)) {
			*t = time.Time{}
		}
	}
	return r
}

// maxCompared bounds the content compared: a sparse member can claim
// terabytes in a few bytes, which both readers would expand to zeros
// here. A bigger entry is compared by its header alone.
const maxCompared = 16 << 20

// readWithArchiveTar reads in with archive/tar.
func readWithArchiveTar(in []byte) ([]streamRecord, error) {
	return readRecords(tar.NewReader(bytes.NewReader(in)))
}

// readWithStream reads in with tarStream.
func readWithStream(in []byte) ([]streamRecord, error) {
	return readRecords(streamNext{&tarStream{br: bufio.NewReaderSize(bytes.NewReader(in), 4096)}})
}

// streamNext gives tarStream archive/tar.Reader's method names.
type streamNext struct{ *tarStream }

func (s streamNext) Next() (*tar.Header, error) { return s.next() }

func readRecords(r interface {
	io.Reader
	Next() (*tar.Header, error)
}) ([]streamRecord, error) {
	var out []streamRecord
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		var data []byte
		if h.Size <= maxCompared {
			if data, err = io.ReadAll(r); err != nil {
				return out, err
			}
		}
		out = append(out, record(h, data))
	}
}

// compareStreams fails t where the two readers disagree on in. strict
// also fails it where only one of them accepts in.
func compareStreams(t *testing.T, in []byte, strict bool) {
	t.Helper()
	want, errWant := readWithArchiveTar(in)
	got, errGot := readWithStream(in)
	n := min(len(want), len(got))
	for i := range n {
		w, g := want[i], got[i]
		if g.Typeflag == tar.TypeXGlobalHeader {
			// Both return it; archive/tar also fills fields ours skips.
			if !maps.Equal(g.PAX, w.PAX) {
				t.Fatalf("entry %d (global header): PAX %v, archive/tar %v", i, g.PAX, w.PAX)
			}
			continue
		}
		if !bytes.Equal(w.Data, g.Data) {
			t.Fatalf("entry %d %q: %d bytes of data, archive/tar %d (or different bytes)", i, g.Name, len(g.Data), len(w.Data))
		}
		w.Data, g.Data = nil, nil
		if fmt.Sprint(w) != fmt.Sprint(g) || !maps.Equal(w.PAX, g.PAX) {
			t.Fatalf("entry %d:\n got %v\nwant %v", i, g, w)
		}
	}
	switch {
	case errWant == nil && errGot == nil && len(want) != len(got):
		t.Fatalf("%d entries, archive/tar %d", len(got), len(want))
	case errWant == nil && errGot == io.ErrUnexpectedEOF && len(got) == len(want) && !hasEndMarker(in):
		// A stream that stops without an end-of-archive marker, in the
		// middle of an entry's headers or padding: archive/tar takes what
		// came before as the whole archive, ours calls it truncated.
		t.Logf("ours refuses a truncated archive that archive/tar reads: %v", errGot)
	case errWant == nil && errGot != nil:
		t.Fatalf("archive/tar reads %d entries; ours fails after %d: %v", len(want), len(got), errGot)
	case strict && errWant != nil && errGot == nil:
		t.Fatalf("ours reads %d entries; archive/tar fails after %d: %v", len(got), len(want), errWant)
	case errWant != nil && errGot == nil:
		t.Logf("ours accepts what archive/tar refuses: %v", errWant)
	}
}

// hasEndMarker reports whether in holds a zero block where a block
// starts: the end-of-archive marker, or data that looks like it.
func hasEndMarker(in []byte) bool {
	for off := 0; off+blockSize <= len(in); off += blockSize {
		if isZeroBlock(in[off:]) {
			return true
		}
	}
	return false
}

// toolTars makes tars with GNU tar and bsdtar in every format they
// write, from a tree with a sparse file, long names, links and devices
// where the tools can make them. A missing tool skips its tars outside
// CI.
func toolTars(t *testing.T) map[string][]byte {
	t.Helper()
	src := t.TempDir()
	mk := func(name, data string) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("etc/hostname", "host\n")
	mk(strings.Repeat("d", 90)+"/"+strings.Repeat("f", 120), "long\n")
	mk("empty", "")
	if err := os.Symlink(strings.Repeat("t", 150), filepath.Join(src, "longlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "etc/hostname"), filepath.Join(src, "hard")); err != nil {
		t.Fatal(err)
	}
	// A sparse file: data at 0, in the middle and at the end, and a
	// file that is all hole.
	sp, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int64{0, 3 << 20, 8<<20 - 5} {
		if _, err := sp.WriteAt([]byte("data!"), at); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close()
	if err := os.WriteFile(filepath.Join(src, "hole"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(src, "hole"), 1<<20); err != nil {
		t.Fatal(err)
	}
	type tool struct {
		bin  string
		args []string
	}
	tools := map[string]tool{}
	for _, f := range []string{"v7", "oldgnu", "gnu", "ustar", "posix"} {
		tools["gnu-"+f] = tool{"tar", []string{"--format=" + f}}
	}
	for _, f := range []string{"gnu", "oldgnu", "posix"} {
		tools["gnu-sparse-"+f] = tool{"tar", []string{"--format=" + f, "--sparse"}}
	}
	for _, v := range []string{"0.0", "0.1", "1.0"} {
		tools["gnu-sparse-pax-"+v] = tool{"tar", []string{"--format=posix", "--sparse", "--sparse-version=" + v}}
	}
	for _, f := range []string{"pax", "ustar", "gnutar", "v7"} {
		tools["bsdtar-"+f] = tool{"bsdtar", []string{"--format=" + f}}
	}
	tools["bsdtar-pax-sparse"] = tool{"bsdtar", []string{"--format=pax", "--read-sparse"}}
	// Python's tarfile, a writer of its own, in its three formats (the
	// harness's -cf - -C DIR . arrive as sys.argv[1:]).
	const pyTar = `import os, sys, tarfile
fmt = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}[os.environ["PYTAR_FORMAT"]]
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=fmt) as tf:
    for root, dirs, files in os.walk(sys.argv[4]):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(root, n)
            try:
                tf.add(p, arcname=os.path.relpath(p, sys.argv[4]), recursive=False)
            except ValueError as e:
                print(e, file=sys.stderr)
`
	for _, f := range []string{"gnu", "pax", "ustar"} {
		tools["python-"+f] = tool{"python3", []string{"PYTAR_FORMAT=" + f}}
	}
	out := map[string][]byte{}
	for name, tl := range tools {
		if _, err := exec.LookPath(tl.bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed; CI must install it (.ci/run)", tl.bin)
			}
			t.Logf("skipping %s: %s is not installed (CI installs it)", name, tl.bin)
			continue
		}
		args := append(append([]string{"-cf", "-"}, tl.args...), "-C", src, ".")
		cmd := exec.Command(tl.bin, args...)
		if tl.bin == "python3" {
			cmd = exec.Command(tl.bin, "-c", pyTar, "-cf", "-", "-C", src)
			cmd.Env = append(os.Environ(), tl.args...)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			// v7 and ustar cannot hold everything; the tools still write
			// what they can and exit non-zero.
			t.Logf("%s: %v: %s", name, err, strings.TrimSpace(stderr.String()))
			if len(b) == 0 {
				continue
			}
		}
		out[name] = b
	}
	return out
}

// TestStreamMatchesArchiveTar: on the hand-made tars, on Go-written tars
// of every format and on what GNU tar and bsdtar write, the decoder and
// archive/tar agree, entry by entry and byte by byte.
func TestStreamMatchesArchiveTar(t *testing.T) {
	inputs := map[string][]byte{}
	files, _ := filepath.Glob("../testdata/*.tar")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[filepath.Base(f)] = b
	}
	mt := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)
	for _, format := range []tar.Format{tar.FormatUSTAR, tar.FormatPAX, tar.FormatGNU} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		long := strings.Repeat("n", 120)
		for _, h := range []tar.Header{
			{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "dir/f", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 5, Uid: 1000, Gid: 100},
			{Name: "dir/l", Typeflag: tar.TypeSymlink, Linkname: "f"},
			{Name: "dir/h", Typeflag: tar.TypeLink, Linkname: "dir/f"},
			{Name: "dev/c", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
			{Name: "dev/b", Typeflag: tar.TypeBlock, Devmajor: 259, Devminor: 70000},
			{Name: "fifo", Typeflag: tar.TypeFifo},
			{Name: "big-ids", Typeflag: tar.TypeReg, Uid: 3 << 20, Gid: 5 << 20},
			{Name: "old", Typeflag: tar.TypeReg, ModTime: time.Unix(-1e9, 0)},
			{Name: strings.Repeat("p", 130) + "/" + long, Typeflag: tar.TypeReg},
		} {
			if h.ModTime.IsZero() {
				h.ModTime = mt
			}
			if format != tar.FormatPAX {
				h.ModTime = h.ModTime.Truncate(time.Second)
			}
			if format == tar.FormatPAX && h.Name == "dir/f" {
				h.PAXRecords = map[string]string{"SCHILY.xattr.user.x": "v\x00w", "LIBARCHIVE.creationtime": "5"}
			}
			if format == tar.FormatGNU && h.Name == "dir/f" {
				h.AccessTime, h.ChangeTime = mt.Add(time.Hour).Truncate(time.Second), mt.Add(2*time.Hour).Truncate(time.Second)
			}
			h.Format = format
			if err := tw.WriteHeader(&h); err != nil {
				if format == tar.FormatUSTAR {
					continue // what ustar cannot hold
				}
				t.Fatalf("%v %s: %v", format, h.Name, err)
			}
			if h.Size > 0 {
				tw.Write([]byte("hello"))
			}
		}
		tw.Close()
		inputs["go-"+format.String()] = buf.Bytes()
	}
	maps.Copy(inputs, toolTars(t))
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		t.Run(name, func(t *testing.T) {
			compareStreams(t, inputs[name], true)
			es, err := readWithStream(inputs[name])
			if err != nil || len(es) == 0 {
				t.Fatalf("%d entries, %v", len(es), err)
			}
			if strings.HasSuffix(name, ".tar") {
				return // testdata: its README says what is in it
			}
			for _, e := range es {
				switch {
				case strings.HasSuffix(e.Name, "/sparse") && (e.Size != 8<<20 || !bytes.HasSuffix(e.Data, []byte("data!"))):
					t.Errorf("sparse: %d bytes, ending %q", e.Size, e.Data[max(0, len(e.Data)-5):])
				case strings.HasSuffix(e.Name, "/hole") && (e.Size != 1<<20 || !bytes.Equal(e.Data, make([]byte, 1<<20))):
					t.Errorf("hole: %d bytes", e.Size)
				}
			}
		})
	}
}

// FuzzStream: on any input, the decoder and archive/tar agree on every
// entry both read, and the decoder reads whatever archive/tar reads.
func FuzzStream(f *testing.F) {
	files, _ := filepath.Glob("../testdata/*.tar")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		compareStreams(t, in, false)
	})
}

// TestBadSparse: a sparse map that does not fit its file or its stored
// data is refused with a message saying so, naming the entry.
func TestBadSparse(t *testing.T) {
	pax10 := func(realsize string, m string, stored int) []byte {
		mp := tartest.Pad(m)
		return join(tartest.RawPAX('x', "GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", "s", "GNU.sparse.realsize", realsize),
			tartest.Raw{Name: "GNUSparseFile.0/s", Typeflag: '0', Size: int64(len(mp) + stored)}.Block(), mp, tartest.Pad(bytes.Repeat([]byte("d"), stored)))
	}
	pax01 := func(m string, stored int) []byte {
		return join(tartest.RawPAX('x', "GNU.sparse.major", "0", "GNU.sparse.minor", "1", "GNU.sparse.name", "s", "GNU.sparse.size", "10000", "GNU.sparse.map", m),
			tartest.Raw{Name: "x", Typeflag: '0', Size: int64(stored)}.Block(), tartest.Pad(bytes.Repeat([]byte("d"), stored)))
	}
	for _, tc := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"1.0 map past the data", join(tartest.RawPAX('x', "GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.realsize", "10"),
			tartest.Raw{Name: "s", Typeflag: '0', Size: 512}.Block(), tartest.Pad("150\n"+strings.Repeat("0\n0\n", 150))), "the GNU sparse 1.0 map runs past the entry's data"},
		{"1.0 map not a number", pax10("10000", "1\nx\n10\n", 10), `holds byte 'x'`},
		{"1.0 map past the size", pax10("100", "1\n95\n10\n", 10), "reaches byte 105, past the file's size of 100"},
		{"1.0 map data mismatch", pax10("10000", "1\n0\n10\n", 20), "the sparse map holds 10 bytes of data, but the tar stores 20"},
		{"1.0 number over 2^63", pax10("10000", "1\n99999999999999999999\n10\n", 10), "over 2^63"},
		{"1.0 too many fragments", pax10("10000", "9999999\n", 0), "over the limit"},
		{"0.1 overlap", pax01("0,10,5,10", 20), "overlaps the one before it"},
		{"0.1 odd map", pax01("0,10,5", 10), "odd count"},
		{"unknown version", join(tartest.RawPAX('x', "GNU.sparse.major", "2", "GNU.sparse.minor", "0"), tartest.Raw{Name: "s", Typeflag: '0'}.Block()), "GNU sparse format 2.0"},
		{"sparse records on a directory", join(tartest.RawPAX('x', "GNU.sparse.map", "0,0"), tartest.Raw{Name: "d", Typeflag: '5'}.Block()), "not a regular file"},
		{"S without GNU magic", tartest.Raw{Name: "s", Typeflag: 'S'}.Block(), "without GNU tar's header magic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := readAll(join(tc.in, tartest.End()))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want one saying %q", err, tc.msg)
			}
			var ee *EntryError
			if !errors.As(err, &ee) || ee.Offset != 0 {
				t.Errorf("want an EntryError at byte 0, got %#v", err)
			}
			t.Log(err)
		})
	}
}

// TestChecksum: the word-at-a-time sums equal the byte-by-byte ones of
// POSIX (unsigned) and old tars (signed).
func TestChecksum(t *testing.T) {
	rnd := uint64(1)
	for n := range 2000 {
		b := make([]byte, blockSize)
		for i := range b {
			rnd = rnd*6364136223846793005 + 1442695040888963407
			b[i] = byte(rnd >> 56)
			if n%3 == 0 {
				b[i] = 0xff // the largest sums
			}
		}
		var unsigned, signed int64
		for i, c := range b {
			if i >= 148 && i < 156 {
				c = ' '
			}
			unsigned += int64(c)
			signed += int64(int8(c))
		}
		copy(b[148:156], fmt.Sprintf("%06o\x00 ", signed&0o777777))
		if n%2 == 0 {
			copy(b[148:156], fmt.Sprintf("%06o\x00 ", unsigned))
		}
		want, u, s, err := checksum(b)
		if err != nil || u != unsigned || (want != u && s != signed) {
			t.Fatalf("block %d: checksum gives %d %d %d %v, want unsigned %d signed %d", n, want, u, s, err, unsigned, signed)
		}
	}
}

// TestHeaderQuirks: headers real writers make that a strict reading of
// POSIX gets wrong. Each is read as archive/tar reads it (and GNU tar
// and bsdtar, but where noted).
func TestHeaderQuirks(t *testing.T) {
	patch := func(b []byte, off int, s string) []byte {
		copy(b[off:], s)
		tartest.SetChecksum(b)
		return b
	}
	noVersion := patch(tartest.Raw{Name: "null", Typeflag: '3', Major: 1, Minor: 3}.Block(), 257, "ustar\x00\x00\x00")
	patch(noVersion, 345, "dev") // the prefix
	// Go before 1.8 wrote a ustar prefix under GNU's magic, over GNU's
	// atime and ctime (archive/tar's invalid-go17.tar); archive/tar
	// still reads the prefix, GNU tar and bsdtar drop it.
	go17 := patch(tartest.Raw{Name: "foo", Typeflag: '0', Magic: "gnu"}.Block(), 345, strings.Repeat("a", 100))
	modeJunk := patch(tartest.Raw{Name: "f", Typeflag: '0'}.Block(), 100, "644\x00abc")
	for _, tc := range []struct {
		name string
		in   []byte
		want string // the entry's name, uid and mode, dev numbers
	}{
		{"ustar without its version", noVersion, "dev/null 0 420 1:3"},
		{"pre-Go-1.8 GNU prefix", go17, strings.Repeat("a", 100) + "/foo 0 420 0:0"},
		{"text after a number's NUL", modeJunk, "f 0 420 0:0"},
		{"two extended headers: the last counts", join(tartest.RawPAX('x', "path", "PAX1/first", "uid", "4242"), tartest.RawPAX('x', "path", "bar"),
			tartest.Raw{Name: "foo", Typeflag: '0'}.Block()), "bar 0 420 0:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := join(tc.in, tartest.End())
			compareStreams(t, in, true)
			es, err := readWithStream(in)
			if err != nil || len(es) != 1 {
				t.Fatalf("%d entries, %v", len(es), err)
			}
			e := es[0]
			if got := fmt.Sprintf("%s %d %d %d:%d", e.Name, e.Uid, e.Mode, e.Devmajor, e.Devminor); got != tc.want {
				t.Errorf("read as %q, want %q", got, tc.want)
			}
		})
	}
}
