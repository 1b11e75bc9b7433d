package tarflat

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// TestOffsets checks Entry.Offset against where archive/tar's Writer put
// each entry's first header block, extended headers included, whether the
// data was read or skipped, and in compressed streams.
func TestOffsets(t *testing.T) {
	long := strings.Repeat("n", 150)
	in, want := tartest.Offsets(t,
		tartest.Dir("./", 0o755).In(tar.FormatUSTAR),
		tartest.File("a", 0o644, "odd-sized data").In(tar.FormatUSTAR),
		tartest.File("pax", 0o644, bytes.Repeat([]byte{1}, 1000)).In(tar.FormatPAX).PAX("SCHILY.xattr.user.x", "v"),
		tartest.File("dir/"+long, 0o644, "x").In(tar.FormatGNU),
		tartest.Symlink("lnk", long).In(tar.FormatGNU),
		tartest.File("empty", 0o644, "").In(tar.FormatUSTAR),
		tartest.File("block", 0o644, make([]byte, 512)).In(tar.FormatUSTAR),
		tartest.Dir("last", 0o755).In(tar.FormatPAX),
	)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"plain", in},
		{"gzip", oracle.Gzip(t, in)},
		{"zstd", oracle.Zstd(t, in)},
	} {
		for _, skip := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "/read", true: "/skip"}[skip], func(t *testing.T) {
				r := NewReader(bytes.NewReader(tc.in))
				defer r.Close()
				for i := 0; ; i++ {
					e, err := r.Next()
					if err == io.EOF {
						if i != len(want) {
							t.Fatalf("got %d entries, want %d", i, len(want))
						}
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if e.Offset != want[i] {
						t.Errorf("entry %d %q: offset %d, want %d", i, e.Raw, e.Offset, want[i])
					}
					if !skip {
						if _, err := io.Copy(io.Discard, r); err != nil {
							t.Fatal(err)
						}
					}
				}
				if r.BytesRead() != int64(len(in)) {
					t.Errorf("read %d uncompressed bytes, the tar has %d", r.BytesRead(), len(in))
				}
			})
		}
	}
}

// TestFormats reads each header format archive/tar or a hand-built block
// can express and checks what the entries become.
func TestFormats(t *testing.T) {
	long := "usr/share/" + strings.Repeat("d", 120) + "/" + strings.Repeat("f", 200)
	longTarget := strings.Repeat("../", 40) + strings.Repeat("t", 200)
	frac := time.Date(2023, 1, 2, 3, 4, 5, 987654321, time.UTC)
	pax := tartest.Bytes(t,
		tartest.File("bin/ping", 0o4755, "ping").Time(frac).In(tar.FormatPAX).PAX(
			"SCHILY.xattr.security.capability", "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
			"SCHILY.xattr.user.both", "schily",
			"LIBARCHIVE.xattr.user.both", "bGliYXJjaGl2ZQ==", // "libarchive": wins over SCHILY
			"LIBARCHIVE.xattr.user.a%3Db", "AP8", // name "user.a=b", value 00 ff, unpadded
			"LIBARCHIVE.creationtime", "1600000000.5",
		),
		tartest.File(long, 0, "long").Owner(1<<30, 70000).In(tar.FormatPAX).PAX("RHT.security.selinux", "system_u:object_r:bin_t:s0"),
	)
	gnu := tartest.Bytes(t,
		tartest.Entry{Header: tar.Header{Name: long, Typeflag: tar.TypeReg, Format: tar.FormatGNU,
			AccessTime: frac.Add(time.Hour), ChangeTime: frac.Add(2 * time.Hour)}, Data: []byte("gnu")},
		tartest.Symlink("l", longTarget).In(tar.FormatGNU),
		tartest.Hardlink("h", "./"+long).In(tar.FormatGNU),
	)
	ustar := tartest.Bytes(t,
		tartest.Block("dev/sda", 0o660, 8, 1).In(tar.FormatUSTAR),
		tartest.Char("dev/tty", 0o666, 5, 0).In(tar.FormatUSTAR),
		tartest.Fifo("run/fifo", 0o600).In(tar.FormatUSTAR),
		tartest.Dir("tmp/", 0o1777).In(tar.FormatUSTAR),
	)
	v7 := join(
		tartest.Raw{Name: "etc/", Typeflag: '5', Mode: 0o40755, Magic: "v7", Mtime: 1700000000}.Block(),
		tartest.Raw{Name: "etc/passwd", Typeflag: 0, Size: 5, Mode: 0o100644, Magic: "v7", Mtime: 1700000000}.Block(), tartest.Pad("root\n"),
		tartest.Raw{Name: "old-dir/", Typeflag: 0, Magic: "v7"}.Block(),
		tartest.Raw{Name: "ustar-dir/", Typeflag: '0', Mode: 0o700}.Block(),
		tartest.Raw{Name: "etc/link", Typeflag: '1', Linkname: "etc/passwd", Magic: "v7"}.Block(),
		tartest.End(),
	)
	// PAX 0.1 sparse, as GNU tar writes with --sparse-version=0.1: the map
	// is a record, the member's data only the stored chunks.
	sparse := join(
		tartest.RawPAX('x', "GNU.sparse.size", "20000", "GNU.sparse.numblocks", "2", "GNU.sparse.name", "data/sparse",
			"GNU.sparse.map", "0,5,19995,5"),
		tartest.Raw{Name: "GNUSparseFile.1/sparse", Typeflag: '0', Size: 10}.Block(), tartest.Pad("head!tail!"),
		tartest.End(),
	)
	sparseWant := make([]byte, 20000)
	copy(sparseWant, "head!")
	copy(sparseWant[19995:], "tail!")

	type want struct {
		name  string
		op    Op
		typ   ext4w.FileType
		mode  uint32
		data  string
		check func(t *testing.T, e *Entry)
	}
	for _, tc := range []struct {
		format string
		in     []byte
		want   []want
	}{
		{"pax", pax, []want{
			{name: "bin/ping", op: OpCreate, typ: ext4w.TypeRegular, mode: 0o4755, data: "ping", check: func(t *testing.T, e *Entry) {
				x := e.File.Xattrs
				if len(x["security.capability"]) != 20 || string(x["user.both"]) != "libarchive" || string(x["user.a=b"]) != "\x00\xff" || len(x) != 3 {
					t.Errorf("xattrs %q", x)
				}
				if !e.File.Mtime.Equal(frac) {
					t.Errorf("mtime %v, want %v", e.File.Mtime, frac)
				}
				if !e.File.Crtime.Equal(time.Unix(1600000000, 5e8)) {
					t.Errorf("crtime %v", e.File.Crtime)
				}
			}},
			{name: long, op: OpCreate, typ: ext4w.TypeRegular, mode: 0, data: "long", check: func(t *testing.T, e *Entry) {
				if e.File.Uid != 1<<30 || e.File.Gid != 70000 {
					t.Errorf("owner %d:%d", e.File.Uid, e.File.Gid)
				}
				// Red Hat tar's label record: the xattr with its NUL.
				if x := e.File.Xattrs; string(x["security.selinux"]) != "system_u:object_r:bin_t:s0\x00" || len(x) != 1 {
					t.Errorf("xattrs %q", x)
				}
			}},
		}},
		{"gnu", gnu, []want{
			{name: long, op: OpCreate, typ: ext4w.TypeRegular, data: "gnu", check: func(t *testing.T, e *Entry) {
				if e.File.Atime.Unix() != frac.Add(time.Hour).Unix() || e.File.Ctime.Unix() != frac.Add(2*time.Hour).Unix() {
					t.Errorf("atime %v ctime %v", e.File.Atime, e.File.Ctime)
				}
			}},
			{name: "l", op: OpCreate, typ: ext4w.TypeSymlink, mode: 0o777, check: func(t *testing.T, e *Entry) {
				if e.File.Linkname != longTarget {
					t.Errorf("target %q", e.File.Linkname)
				}
			}},
			{name: "h", op: OpLink, check: func(t *testing.T, e *Entry) {
				if e.Target != long {
					t.Errorf("hardlink target %q", e.Target)
				}
			}},
		}},
		{"ustar", ustar, []want{
			{name: "dev/sda", op: OpCreate, typ: ext4w.TypeBlockDev, mode: 0o660, check: func(t *testing.T, e *Entry) {
				if e.File.Devmajor != 8 || e.File.Devminor != 1 {
					t.Errorf("device %d:%d", e.File.Devmajor, e.File.Devminor)
				}
				if !e.File.Atime.IsZero() || !e.File.Ctime.IsZero() {
					t.Errorf("ustar has no atime or ctime, got %v %v", e.File.Atime, e.File.Ctime)
				}
			}},
			{name: "dev/tty", op: OpCreate, typ: ext4w.TypeCharDev, mode: 0o666},
			{name: "run/fifo", op: OpCreate, typ: ext4w.TypeFifo, mode: 0o600},
			{name: "tmp", op: OpCreate, typ: ext4w.TypeDir, mode: 0o1777},
		}},
		{"v7", v7, []want{
			{name: "etc", op: OpCreate, typ: ext4w.TypeDir, mode: 0o755},
			{name: "etc/passwd", op: OpCreate, typ: ext4w.TypeRegular, mode: 0o644, data: "root\n", check: func(t *testing.T, e *Entry) {
				if e.File.Mtime.Unix() != 1700000000 {
					t.Errorf("mtime %v", e.File.Mtime)
				}
			}},
			// Old tars mark directories with a trailing slash.
			{name: "old-dir", op: OpCreate, typ: ext4w.TypeDir, mode: 0o644},
			{name: "ustar-dir", op: OpCreate, typ: ext4w.TypeDir, mode: 0o700},
			{name: "etc/link", op: OpLink},
		}},
		{"pax sparse 0.1", sparse, []want{
			{name: "data/sparse", op: OpCreate, typ: ext4w.TypeRegular, mode: 0o644, data: string(sparseWant)},
		}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			es, data, _, err := readAll(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != len(tc.want) {
				t.Fatalf("got %d entries, want %d", len(es), len(tc.want))
			}
			for i, w := range tc.want {
				e := es[i]
				if e.Name != w.name || e.Op != w.op {
					t.Errorf("entry %d: %q op %d, want %q op %d", i, e.Name, e.Op, w.name, w.op)
					continue
				}
				if w.op == OpCreate && (e.File.Type != w.typ || e.File.Mode != w.mode) {
					t.Errorf("%s: type %v mode %#o, want %v %#o", e.Name, e.File.Type, e.File.Mode, w.typ, w.mode)
				}
				if string(data[i]) != w.data {
					t.Errorf("%s: data %.40q (%d bytes), want %.40q (%d bytes)", e.Name, data[i], len(data[i]), w.data, len(w.data))
				}
				if w.op == OpCreate && e.File.Size != int64(len(w.data)) {
					t.Errorf("%s: size %d, want %d", e.Name, e.File.Size, len(w.data))
				}
				if w.check != nil {
					w.check(t, e)
				}
			}
		})
	}
}

// TestCompression checks that compressed streams are recognised by their
// magic bytes, and that a plain tar whose first name happens to start
// with a magic number is still read as a plain tar.
func TestCompression(t *testing.T) {
	plain := tartest.Bytes(t, tartest.File("f", 0o644, "data"))
	gzMagicName := tartest.Bytes(t, tartest.File("\x1f\x8b-name", 0o644, "data").In(tar.FormatPAX))
	multi := append(oracle.Gzip(t, plain[:512]), oracle.Gzip(t, plain[512:])...)
	for _, tc := range []struct {
		name, codec string
		in          []byte
	}{
		{"plain", "", plain},
		{"gzip", "gzip", oracle.Gzip(t, plain)},
		{"gzip multi-member", "gzip", multi},
		{"zstd", "zstd", oracle.Zstd(t, plain)},
		{"plain tar that starts like gzip", "", gzMagicName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tc.in))
			e, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if r.Compression() != tc.codec {
				t.Errorf("compression %q, want %q", r.Compression(), tc.codec)
			}
			b, err := io.ReadAll(r)
			if err != nil || string(b) != "data" || !strings.HasSuffix(e.Name, "name") && e.Name != "f" {
				t.Errorf("got %q %q, %v", e.Name, b, err)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("want io.EOF, got %v", err)
			}
		})
	}
}

// TestBadStreams checks that every kind of broken input is an error that
// says what is wrong and where, never a short list of entries.
func TestBadStreams(t *testing.T) {
	good, offs := tartest.Offsets(t,
		tartest.Dir("etc/", 0o755),
		tartest.File("etc/big", 0o644, bytes.Repeat([]byte("0123456789"), 300)),
		tartest.File("etc/after", 0o644, "x"),
	)
	badSum := bytes.Clone(good)
	badSum[offs[2]+10] ^= 0x40 // a byte of "etc/after"'s name
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919 + i/13)
	}
	gz := oracle.Gzip(t, good)
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-6] ^= 0xff // in the CRC-32 of the gzip trailer
	noEnd := good[:offs[2]]       // cut at a block boundary, before etc/after
	for _, tc := range []struct {
		name   string
		in     []byte
		msg    string // in the error
		entry  string // the EntryError's Name; "-" for no EntryError
		offset int64
	}{
		{"empty", nil, "the input is empty", "-", 0},
		{"gzip of a non-tar", oracle.Gzip(t, random), "not a tar archive (the gzip stream decompresses, but not to a tar)", "", 0},
		{"random bytes", random, "not a tar archive: not a tar header", "", 0},
		{"short non-tar", []byte("hello, world\n"), "not a tar archive: the input is 13 bytes", "", 0},
		{"truncated in data", good[:offs[1]+512+100], "ends in the middle of the entry's data", "etc/big", offs[1]},
		{"truncated in header", good[:offs[2]+100], "ends in the middle of a header", "", offs[2]},
		{"no end-of-archive marker", noEnd, "without tar's end-of-archive marker", "-", 0},
		{"cut right after the data", good[:offs[2]+512+1], "without tar's end-of-archive marker", "-", 0},
		{"cut in the padding", good[:offs[2]+512+100], `the input ends at byte 4708, after entry "etc/after", without tar's end-of-archive marker`, "-", 0},
		{"bad checksum", badSum, "bad header checksum", "", offs[2]},
		{"gzip truncated", gz[:len(gz)/2], "gzip stream is truncated", "", -2},
		{"gzip bad crc", badCRC, "gzip stream is corrupt", "-", 0},
		{"zstd garbage", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, random...), "zstd stream is corrupt", "", 0},
		{"xz", []byte("\xfd7zXZ\x00\x00\x04"), "xz-compressed", "-", 0},
		{"zero block then data", join(make([]byte, 512), good), "a zero block (the end-of-archive marker) is followed by more data", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, _, _, err := readAll(tc.in)
			if err == nil {
				t.Fatalf("no error; %d entries", len(es))
			}
			t.Log(err)
			if !errors.Is(err, ErrFormat) {
				t.Errorf("%v does not wrap ErrFormat", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			var ee *EntryError
			switch {
			case tc.entry == "-":
				if errors.As(err, &ee) {
					t.Errorf("want no EntryError, got %#v", ee)
				}
			case !errors.As(err, &ee):
				t.Errorf("want an EntryError, got %T %v", err, err)
			case ee.Name != tc.entry || (tc.offset != -2 && ee.Offset != tc.offset):
				t.Errorf("EntryError names %q at %d, want %q at %d", ee.Name, ee.Offset, tc.entry, tc.offset)
			}
		})
	}
}

// TestEndOfArchive checks what may follow the last entry.
func TestEndOfArchive(t *testing.T) {
	good := tartest.Bytes(t, tartest.File("f", 0o644, "x"))
	body := good[:len(good)-1024]
	for _, tc := range []struct {
		name string
		in   []byte
		warn string
	}{
		{"two zero blocks", good, ""},
		{"one zero block", join(body, make([]byte, 512)), ""},
		{"record padding", join(good, make([]byte, 8192)), ""},
		{"a second archive", join(good, good), "ignoring what follows the tar end-of-archive marker"},
		{"gzip then garbage", join(oracle.Gzip(t, good), []byte("garbage")), "ignoring data after the end of the gzip stream"},
		{"up to the bound of zeros", join(good, make([]byte, maxTrailing-1024)), ""},
		{"past the bound", join(good, make([]byte, maxTrailing)), "64 MiB or more, not read to its end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, _, warns, err := readAll(tc.in)
			if err != nil || len(es) != 1 {
				t.Fatalf("%d entries, %v", len(es), err)
			}
			got := strings.Join(warns, "\n")
			if (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
				t.Errorf("warnings %q, want %q", got, tc.warn)
			}
		})
	}
}

// TestEntryRejects checks the per-entry rules the Reader applies on its
// own: each is an EntryError naming the entry at its offset, and the
// stream stays readable after it.
func TestEntryRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		hdr  []byte
		msg  string
	}{
		{"dotdot", tartest.Raw{Name: "../etc/passwd", Typeflag: '0'}.Block(), `climbs out of the root`},
		{"dotdot inside", tartest.Raw{Name: "a/../../b", Typeflag: '0'}.Block(), `climbs out of the root`},
		{"256-byte component", join(tartest.RawPAX('x', "path", "d/"+strings.Repeat("n", 256)), tartest.Raw{Name: "x", Typeflag: '0'}.Block()), "a name component is 256 bytes, the limit is 255"},
		{"4096-byte symlink", join(tartest.RawPAX('x', "linkpath", strings.Repeat("t", 4096)), tartest.Raw{Name: "l", Typeflag: '2'}.Block()), "symlink target is 4096 bytes, the limit is 4095"},
		{"empty symlink", tartest.Raw{Name: "l", Typeflag: '2'}.Block(), "empty target"},
		{"unknown typeflag", tartest.Raw{Name: "odd", Typeflag: 'Q'}.Block(), `unknown entry type 'Q'`},
		{"volume label", tartest.Raw{Name: "vol", Typeflag: 'V', Magic: "gnu"}.Block(), `(GNU volume label)`},
		{"device major 4096", tartest.Raw{Name: "dev/x", Typeflag: '3', Major: 4096}.Block(), "device 4096:0 is beyond what ext4 holds"},
		{"device minor 2^20", tartest.Raw{Name: "dev/x", Typeflag: '4', Minor: 1 << 20}.Block(), "device 0:1048576"},
		{"root as a file", tartest.Raw{Name: "./", Typeflag: '2', Linkname: "x"}.Block(), "the root must be a directory"},
		{"hardlink escaping", tartest.Raw{Name: "h", Typeflag: '1', Linkname: "../x"}.Block(), `hardlink target "../x"`},
		{"hardlink to root", tartest.Raw{Name: "h", Typeflag: '1', Linkname: "./"}.Block(), "hardlink to the root directory"},
		{"empty whiteout", tartest.Raw{Name: "a/.wh.", Typeflag: '0'}.Block(), "whiteout with an empty name"},
		{"global header with records", tartest.RawPAX('g', "uid", "5"), `PAX global header with record "uid"`},
		{"slash file with data", join(tartest.Raw{Name: "d/", Typeflag: '0', Size: 3}.Block(), tartest.Pad("abc")), "ends in / (a directory, by the old convention) carries 3 bytes"},
		{"bad libarchive base64", join(tartest.RawPAX('x', "LIBARCHIVE.xattr.user.x", "!!!"), tartest.Raw{Name: "f", Typeflag: '0'}.Block()), "not base64"},
		{"uid over 32 bits", join(tartest.RawPAX('x', "uid", "4294967296"), tartest.Raw{Name: "f", Typeflag: '0'}.Block()), "uid 4294967296 is out of ext4's 32-bit range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := tartest.Raw{Name: "first", Typeflag: '5'}.Block()
			in := join(first, tc.hdr, tartest.Raw{Name: "after", Typeflag: '5'}.Block(), tartest.End())
			r := NewReader(bytes.NewReader(in))
			if e, err := r.Next(); err != nil || e.Name != "first" {
				t.Fatalf("first entry: %v", err)
			}
			_, err := r.Next()
			var ee *EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("want an EntryError, got %v", err)
			}
			t.Log(err)
			if ee.Offset != blockSize {
				t.Errorf("offset %d, want %d", ee.Offset, blockSize)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if e, err := r.Next(); err != nil || e.Name != "after" {
				t.Errorf("the entry after a rejected one: %v, %v", e, err)
			}
		})
	}
}

// TestWhiteouts checks how whiteout entries turn into removals.
func TestWhiteouts(t *testing.T) {
	in := join(
		tartest.Raw{Name: "etc/.wh.passwd", Typeflag: '0'}.Block(),
		tartest.Raw{Name: "./.wh.opt", Typeflag: '0'}.Block(),
		tartest.Raw{Name: "var/.wh..wh..opq", Typeflag: '0'}.Block(),
		tartest.Raw{Name: "var/.wh..wh.plnk", Typeflag: '5'}.Block(),
		tartest.End(),
	)
	es, _, warns, err := readAll(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Op != OpRemove || es[0].Name != "etc/passwd" || es[1].Op != OpRemove || es[1].Name != "opt" {
		for _, e := range es {
			t.Logf("%+v", *e)
		}
		t.Fatal("want removals of etc/passwd and opt")
	}
	if len(warns) != 4 {
		t.Errorf("want a warning per whiteout, got %q", warns)
	}
}

// TestContiguousFile checks that typeflag '7' (contiguous file) is a regular
// file with its data, as GNU tar, bsdtar and archive/tar extract it (SPEC
// "Tar input rules"), also when PAX sparse records make it sparse, which
// archive/tar reads on it too.
func TestContiguousFile(t *testing.T) {
	sparse := "3\n0\n4\n8192\n4\n16384\n0\n"
	in := join(
		tartest.Raw{Name: "cont", Typeflag: '7', Size: 5, Mode: 0o755}.Block(), tartest.Pad("hello"),
		tartest.RawPAX('x', "GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", "sparse-cont", "GNU.sparse.realsize", "16384"),
		tartest.Raw{Name: "GNUSparseFile.0/sparse-cont", Typeflag: '7', Size: 512 + 8}.Block(), tartest.Pad(append(tartest.Pad(sparse), "abcdwxyz"...)),
		tartest.End(),
	)
	es, data, _, err := readAll(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("%d entries, want 2", len(es))
	}
	for i, want := range []struct {
		name string
		mode uint32
		data string
	}{
		{"cont", 0o755, "hello"},
		{"sparse-cont", 0o644, "abcd" + strings.Repeat("\x00", 8188) + "wxyz" + strings.Repeat("\x00", 8188)},
	} {
		e := es[i]
		if e.Op != OpCreate || e.Name != want.name || e.File.Type != ext4w.TypeRegular || e.File.Mode != want.mode || e.File.Size != int64(len(want.data)) {
			t.Errorf("entry %d: %+v, want regular file %s, mode %o, %d bytes", i, *e, want.name, want.mode, len(want.data))
		}
		if got := data[i]; string(got) != want.data {
			t.Errorf("%s: %d bytes of data that differ from the %d expected", e.Name, len(got), len(want.data))
		}
	}
	compareStreams(t, in, true)
}

func TestGlobalCommentHeader(t *testing.T) {
	// git archive writes a global header holding the commit id.
	in := join(tartest.RawPAX('g', "comment", "0123abcd"), tartest.Raw{Name: "f", Typeflag: '0'}.Block(), tartest.End())
	es, _, _, err := readAll(in)
	if err != nil || len(es) != 1 || es[0].Name != "f" || es[0].Offset != 1024 {
		t.Fatalf("got %d entries, %v", len(es), err)
	}
}

func TestBadOption(t *testing.T) {
	r := NewReader(bytes.NewReader(nil), WithWarn(nil))
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "nil warn") {
		t.Fatalf("got %v", err)
	}
}

// TestNewest checks that Newest covers every header, whiteouts and
// hardlinks included, as SPEC's "newest mtime in the tar" does.
func TestNewest(t *testing.T) {
	late := time.Date(2030, 1, 1, 0, 0, 0, 7, time.UTC)
	in := tartest.Bytes(t,
		tartest.File("f", 0o644, ""),
		tartest.Hardlink("g", "f").Time(late.Add(-time.Hour)),
		tartest.Whiteout("d/.wh..wh..opq").Time(late).In(tar.FormatPAX),
	)
	r := NewReader(bytes.NewReader(in))
	for {
		if _, err := r.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !r.Newest().Equal(late) {
		t.Errorf("Newest %v, want %v", r.Newest(), late)
	}
}
