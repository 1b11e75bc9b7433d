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
)

// TestOffsets checks Entry.Offset against where archive/tar's Writer put
// each entry's first header block, extended headers included, whether the
// data was read or skipped, and in compressed streams.
func TestOffsets(t *testing.T) {
	long := strings.Repeat("n", 150)
	in, want := writeTar(t,
		tarEntry{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatUSTAR}},
		tarEntry{hdr: tar.Header{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatUSTAR}, data: []byte("odd-sized data")},
		tarEntry{hdr: tar.Header{Name: "pax", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"SCHILY.xattr.user.x": "v"}}, data: bytes.Repeat([]byte{1}, 1000)},
		tarEntry{hdr: tar.Header{Name: "dir/" + long, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatGNU}, data: []byte("x")},
		tarEntry{hdr: tar.Header{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: long, Format: tar.FormatGNU}},
		tarEntry{hdr: tar.Header{Name: "empty", Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}},
		tarEntry{hdr: tar.Header{Name: "block", Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}, data: make([]byte, 512)},
		tarEntry{hdr: tar.Header{Name: "last", Typeflag: tar.TypeDir, Format: tar.FormatPAX, ModTime: testTime}},
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
	pax, _ := writeTar(t,
		tarEntry{hdr: tar.Header{Name: "bin/ping", Typeflag: tar.TypeReg, Mode: 0o4755, Format: tar.FormatPAX, ModTime: frac,
			PAXRecords: map[string]string{
				"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
				"SCHILY.xattr.user.both":           "schily",
				"LIBARCHIVE.xattr.user.both":       "bGliYXJjaGl2ZQ==", // "libarchive": wins over SCHILY
				"LIBARCHIVE.xattr.user.a%3Db":      "AP8",              // name "user.a=b", value 00 ff, unpadded
				"LIBARCHIVE.creationtime":          "1600000000.5",
			}}, data: []byte("ping")},
		tarEntry{hdr: tar.Header{Name: long, Typeflag: tar.TypeReg, Format: tar.FormatPAX, Uid: 1 << 30, Gid: 70000,
			PAXRecords: map[string]string{"RHT.security.selinux": "system_u:object_r:bin_t:s0"}}, data: []byte("long")},
	)
	gnu, _ := writeTar(t,
		tarEntry{hdr: tar.Header{Name: long, Typeflag: tar.TypeReg, Format: tar.FormatGNU, AccessTime: frac.Add(time.Hour), ChangeTime: frac.Add(2 * time.Hour)}, data: []byte("gnu")},
		tarEntry{hdr: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: longTarget, Format: tar.FormatGNU}},
		tarEntry{hdr: tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "./" + long, Format: tar.FormatGNU}},
	)
	ustar, _ := writeTar(t,
		tarEntry{hdr: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8, Devminor: 1, Format: tar.FormatUSTAR}},
		tarEntry{hdr: tar.Header{Name: "dev/tty", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 5, Devminor: 0, Format: tar.FormatUSTAR}},
		tarEntry{hdr: tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600, Format: tar.FormatUSTAR}},
		tarEntry{hdr: tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, Format: tar.FormatUSTAR}},
	)
	v7 := join(
		rawHeader{name: "etc/", typeflag: '5', mode: 0o40755, magic: "v7", mtime: 1700000000}.block(),
		rawHeader{name: "etc/passwd", typeflag: 0, size: 5, mode: 0o100644, magic: "v7", mtime: 1700000000}.block(), pad([]byte("root\n")),
		rawHeader{name: "old-dir/", typeflag: 0, magic: "v7"}.block(),
		rawHeader{name: "ustar-dir/", typeflag: '0', mode: 0o700}.block(),
		rawHeader{name: "etc/link", typeflag: '1', link: "etc/passwd", magic: "v7"}.block(),
		endMarker,
	)
	// PAX 0.1 sparse, as GNU tar writes with --sparse-version=0.1: the map
	// is a record, the member's data only the stored chunks.
	sparse := join(
		paxEntry('x', "GNU.sparse.size", "20000", "GNU.sparse.numblocks", "2", "GNU.sparse.name", "data/sparse",
			"GNU.sparse.map", "0,5,19995,5"),
		rawHeader{name: "GNUSparseFile.1/sparse", typeflag: '0', size: 10}.block(), pad([]byte("head!tail!")),
		endMarker,
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
			{name: "l", op: OpCreate, typ: ext4w.TypeSymlink, check: func(t *testing.T, e *Entry) {
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
	plain, _ := writeTar(t, tarEntry{hdr: tar.Header{Name: "f", Typeflag: tar.TypeReg}, data: []byte("data")})
	gzMagicName, _ := writeTar(t, tarEntry{hdr: tar.Header{Name: "\x1f\x8b-name", Typeflag: tar.TypeReg, Format: tar.FormatPAX}, data: []byte("data")})
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
	good, offs := writeTar(t,
		tarEntry{hdr: tar.Header{Name: "etc/", Typeflag: tar.TypeDir}},
		tarEntry{hdr: tar.Header{Name: "etc/big", Typeflag: tar.TypeReg}, data: bytes.Repeat([]byte("0123456789"), 300)},
		tarEntry{hdr: tar.Header{Name: "etc/after", Typeflag: tar.TypeReg}, data: []byte("x")},
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
	good, _ := writeTar(t, tarEntry{hdr: tar.Header{Name: "f", Typeflag: tar.TypeReg}, data: []byte("x")})
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
		{"dotdot", rawHeader{name: "../etc/passwd", typeflag: '0'}.block(), `climbs out of the root`},
		{"dotdot inside", rawHeader{name: "a/../../b", typeflag: '0'}.block(), `climbs out of the root`},
		{"256-byte component", join(paxEntry('x', "path", "d/"+strings.Repeat("n", 256)), rawHeader{name: "x", typeflag: '0'}.block()), "a name component is 256 bytes, the limit is 255"},
		{"4096-byte symlink", join(paxEntry('x', "linkpath", strings.Repeat("t", 4096)), rawHeader{name: "l", typeflag: '2'}.block()), "symlink target is 4096 bytes, the limit is 4095"},
		{"empty symlink", rawHeader{name: "l", typeflag: '2'}.block(), "empty target"},
		{"unknown typeflag", rawHeader{name: "odd", typeflag: 'Q'}.block(), `unknown entry type 'Q'`},
		{"volume label", rawHeader{name: "vol", typeflag: 'V', magic: "gnu"}.block(), `(GNU volume label)`},
		{"device major 4096", rawHeader{name: "dev/x", typeflag: '3', major: 4096}.block(), "device 4096:0 is beyond what ext4 holds"},
		{"device minor 2^20", rawHeader{name: "dev/x", typeflag: '4', minor: 1 << 20}.block(), "device 0:1048576"},
		{"root as a file", rawHeader{name: "./", typeflag: '2', link: "x"}.block(), "the root must be a directory"},
		{"hardlink escaping", rawHeader{name: "h", typeflag: '1', link: "../x"}.block(), `hardlink target "../x"`},
		{"hardlink to root", rawHeader{name: "h", typeflag: '1', link: "./"}.block(), "hardlink to the root directory"},
		{"empty whiteout", rawHeader{name: "a/.wh.", typeflag: '0'}.block(), "whiteout with an empty name"},
		{"global header with records", paxEntry('g', "uid", "5"), `PAX global header with record "uid"`},
		{"slash file with data", join(rawHeader{name: "d/", typeflag: '0', size: 3}.block(), pad([]byte("abc"))), "ends in / (a directory, by the old convention) carries 3 bytes"},
		{"bad libarchive base64", join(paxEntry('x', "LIBARCHIVE.xattr.user.x", "!!!"), rawHeader{name: "f", typeflag: '0'}.block()), "not base64"},
		{"uid over 32 bits", join(paxEntry('x', "uid", "4294967296"), rawHeader{name: "f", typeflag: '0'}.block()), "uid 4294967296 is out of ext4's 32-bit range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := rawHeader{name: "first", typeflag: '5'}.block()
			in := join(first, tc.hdr, rawHeader{name: "after", typeflag: '5'}.block(), endMarker)
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
		rawHeader{name: "etc/.wh.passwd", typeflag: '0'}.block(),
		rawHeader{name: "./.wh.opt", typeflag: '0'}.block(),
		rawHeader{name: "var/.wh..wh..opq", typeflag: '0'}.block(),
		rawHeader{name: "var/.wh..wh.plnk", typeflag: '5'}.block(),
		endMarker,
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
		rawHeader{name: "cont", typeflag: '7', size: 5, mode: 0o755}.block(), pad([]byte("hello")),
		paxEntry('x', "GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", "sparse-cont", "GNU.sparse.realsize", "16384"),
		rawHeader{name: "GNUSparseFile.0/sparse-cont", typeflag: '7', size: 512 + 8}.block(), pad(append(pad([]byte(sparse)), "abcdwxyz"...)),
		endMarker,
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
	in := join(paxEntry('g', "comment", "0123abcd"), rawHeader{name: "f", typeflag: '0'}.block(), endMarker)
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
	in, _ := writeTar(t,
		tarEntry{hdr: tar.Header{Name: "f", Typeflag: tar.TypeReg}},
		tarEntry{hdr: tar.Header{Name: "g", Typeflag: tar.TypeLink, Linkname: "f", ModTime: late.Add(-time.Hour)}},
		tarEntry{hdr: tar.Header{Name: "d/.wh..wh..opq", Typeflag: tar.TypeReg, ModTime: late, Format: tar.FormatPAX}},
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
