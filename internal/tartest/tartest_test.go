package tartest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// read returns the headers and data of every entry archive/tar reads in
// b, and fails t on any error.
func read(t *testing.T, b []byte) ([]*tar.Header, []string) {
	t.Helper()
	var hs []*tar.Header
	var data []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		d, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hs, data = append(hs, h), append(data, string(d))
	}
}

// TestEntries checks what each constructor and option writes, as
// archive/tar reads it back.
func TestEntries(t *testing.T) {
	frac := time.Date(2023, 1, 2, 3, 4, 5, 987654321, time.UTC)
	long := strings.Repeat("n", 150)
	in := Bytes(t,
		Dir("etc", 0o750),
		File("etc/s", 0o644, "string data"),
		File("etc/b", 0o4755, []byte{0, 1, 2}).Owner(7, 8),
		Symlink("l", "etc/s"),
		Hardlink("h", "etc/s"),
		Whiteout("etc/.wh.x"),
		Char("dev/null", 0o666, 1, 3),
		Block("dev/sda", 0o660, 8, 1),
		Fifo("run/p", 0o600),
		File(long, 0o644, "").In(tar.FormatGNU),
		File("pax", 0o644, "x").Time(frac).In(tar.FormatPAX).PAX("SCHILY.xattr.user.a", "v\x00", "comment", "c"),
		Entry{Header: tar.Header{Name: "cont", Typeflag: tar.TypeCont, Mode: 0o755}, Data: []byte("hello")},
	)
	hs, data := read(t, in)
	for i, want := range []struct {
		name     string
		typeflag byte
		mode     int64
		data     string
		link     string
		dev      [2]int64
		format   tar.Format
	}{
		{"etc", tar.TypeDir, 0o750, "", "", [2]int64{}, tar.FormatUSTAR},
		{"etc/s", tar.TypeReg, 0o644, "string data", "", [2]int64{}, tar.FormatUSTAR},
		{"etc/b", tar.TypeReg, 0o4755, "\x00\x01\x02", "", [2]int64{}, tar.FormatUSTAR},
		{"l", tar.TypeSymlink, 0o777, "", "etc/s", [2]int64{}, tar.FormatUSTAR},
		{"h", tar.TypeLink, 0, "", "etc/s", [2]int64{}, tar.FormatUSTAR},
		{"etc/.wh.x", tar.TypeReg, 0, "", "", [2]int64{}, tar.FormatUSTAR},
		{"dev/null", tar.TypeChar, 0o666, "", "", [2]int64{1, 3}, tar.FormatUSTAR},
		{"dev/sda", tar.TypeBlock, 0o660, "", "", [2]int64{8, 1}, tar.FormatUSTAR},
		{"run/p", tar.TypeFifo, 0o600, "", "", [2]int64{}, tar.FormatUSTAR},
		{long, tar.TypeReg, 0o644, "", "", [2]int64{}, tar.FormatGNU},
		{"pax", tar.TypeReg, 0o644, "x", "", [2]int64{}, tar.FormatPAX},
		{"cont", tar.TypeCont, 0o755, "hello", "", [2]int64{}, tar.FormatUSTAR},
	} {
		if i >= len(hs) {
			t.Fatalf("%d entries, want more", len(hs))
		}
		h := hs[i]
		if h.Name != want.name || h.Typeflag != want.typeflag || h.Mode != want.mode || data[i] != want.data ||
			h.Linkname != want.link || h.Devmajor != want.dev[0] || h.Devminor != want.dev[1] || h.Format != want.format {
			t.Errorf("entry %d: %q %c %#o %q -> %q %d:%d %v, want %+v", i, h.Name, h.Typeflag, h.Mode, data[i], h.Linkname, h.Devmajor, h.Devminor, h.Format, want)
		}
		switch {
		case h.Name == "etc/b" && (h.Uid != 7 || h.Gid != 8):
			t.Errorf("etc/b: owner %d:%d, want 7:8", h.Uid, h.Gid)
		case h.Name == "pax" && (!h.ModTime.Equal(frac) || h.PAXRecords["SCHILY.xattr.user.a"] != "v\x00" || h.PAXRecords["comment"] != "c"):
			t.Errorf("pax: mtime %v, records %q", h.ModTime, h.PAXRecords)
		case h.Name != "pax" && !h.ModTime.Equal(Mtime.Truncate(time.Second)):
			t.Errorf("%s: mtime %v, want Mtime to the second", h.Name, h.ModTime)
		}
	}
	if len(hs) != 12 {
		t.Errorf("%d entries, want 12", len(hs))
	}
}

// TestPAXCopies checks that an entry made from another does not change
// the other's records.
func TestPAXCopies(t *testing.T) {
	base := File("f", 0o644, "").PAX("a", "1")
	derived := base.PAX("b", "2")
	if len(base.PAXRecords) != 1 || len(derived.PAXRecords) != 2 {
		t.Errorf("base %q, derived %q", base.PAXRecords, derived.PAXRecords)
	}
}

// TestOffsets checks that each offset is where archive/tar, reading from
// there, finds the entry, extended headers included.
func TestOffsets(t *testing.T) {
	entries := []Entry{
		Dir("./", 0o755),
		File("a", 0o644, "odd-sized data"),
		File("pax", 0o644, bytes.Repeat([]byte{1}, 1000)).PAX("SCHILY.xattr.user.x", "v"),
		File("dir/"+strings.Repeat("n", 150), 0o644, "x").In(tar.FormatGNU),
		Symlink("lnk", strings.Repeat("t", 150)).In(tar.FormatGNU),
		File("block", 0o644, make([]byte, 512)),
		Dir("last", 0o755),
	}
	in, offs := Offsets(t, entries...)
	if len(offs) != len(entries) {
		t.Fatalf("%d offsets for %d entries", len(offs), len(entries))
	}
	for i, off := range offs {
		if off%BlockSize != 0 {
			t.Errorf("%s: offset %d is not on a block", entries[i].Name, off)
		}
		hs, _ := read(t, in[off:])
		if len(hs) != len(entries)-i || hs[0].Name != entries[i].Name {
			t.Errorf("%s: from offset %d archive/tar reads %d entries, the first %q", entries[i].Name, off, len(hs), hs[0].Name)
		}
	}
	if !bytes.Equal(Bytes(t, entries...), in) {
		t.Error("Bytes and Offsets write different tars")
	}
	got, err := os.ReadFile(Write(t, entries...))
	if err != nil || !bytes.Equal(got, in) {
		t.Errorf("Write wrote %d bytes that differ from Bytes's %d: %v", len(got), len(in), err)
	}
}

// TestRaw checks hand-built headers, extended headers and padding against
// archive/tar's reading of them.
func TestRaw(t *testing.T) {
	in := slices.Concat(
		Raw{Name: "etc/", Typeflag: '5', Mode: 0o755, Mtime: 1700000000, Magic: "v7"}.Block(),
		Raw{Name: "etc/passwd", Typeflag: '0', Size: 5, Mtime: 1700000000}.Block(), Pad("root\n"),
		Raw{Name: "dev/x", Typeflag: '3', Major: 4095, Minor: 1 << 19, Magic: "gnu"}.Block(),
		RawPAX('x', "path", "renamed/"+strings.Repeat("p", 200), "uid", "4242"),
		Raw{Name: "short", Typeflag: '2', Linkname: "target"}.Block(),
		RawPAX('g', "comment", "global"),
		Raw{Name: "cont", Typeflag: '7', Size: 3}.Block(), Pad("abc"),
		End(),
	)
	hs, data := read(t, in)
	if len(hs) != 6 {
		t.Fatalf("%d entries, want 6", len(hs))
	}
	check := func(i int, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("entry %d: %+v, data %q", i, *hs[i], data[i])
		}
	}
	check(0, hs[0].Name == "etc/" && hs[0].Typeflag == '5' && hs[0].Mode == 0o755 && hs[0].Format&(tar.FormatUSTAR|tar.FormatPAX|tar.FormatGNU) == 0 && hs[0].ModTime.Unix() == 1700000000)
	check(1, hs[1].Name == "etc/passwd" && hs[1].Mode == 0o644 && data[1] == "root\n" && hs[1].Format == tar.FormatUSTAR)
	check(2, hs[2].Devmajor == 4095 && hs[2].Devminor == 1<<19 && hs[2].Format == tar.FormatGNU)
	check(3, hs[3].Name == "renamed/"+strings.Repeat("p", 200) && hs[3].Uid == 4242 && hs[3].Linkname == "target")
	check(4, hs[4].Typeflag == tar.TypeXGlobalHeader && hs[4].PAXRecords["comment"] == "global")
	check(5, hs[5].Typeflag == '7' && data[5] == "abc")

	// A record's length counts its own digits: 8 bytes and 1 digit, then
	// 9 bytes and 2 digits.
	if got := string(PAXRecords("k", "1234", "k", "12345")); got != "9 k=1234\n11 k=12345\n" {
		t.Errorf("PAXRecords: %q", got)
	}
	if got := string(PAXRecords("a", "")); got != "5 a=\n" {
		t.Errorf("PAXRecords: %q", got)
	}
	if len(Pad("")) != 0 || len(Pad(make([]byte, 512))) != 512 || len(Pad([]byte("x"))) != 512 {
		t.Error("Pad does not round up to whole blocks")
	}
}

// TestRawRefuses checks that a field too small for its value panics
// rather than cutting the value.
func TestRawRefuses(t *testing.T) {
	for name, h := range map[string]Raw{
		"long name":   {Name: strings.Repeat("n", 101)},
		"long link":   {Name: "l", Linkname: strings.Repeat("t", 101)},
		"big size":    {Name: "f", Size: 1 << 33},
		"big major":   {Name: "d", Major: 1 << 21},
		"unknown tag": {Name: "f", Magic: "star"},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			h.Block()
		})
	}
}

// TestPAXRefusesDropped checks that PAX records archive/tar's Writer
// would drop panic instead.
func TestPAXRefusesDropped(t *testing.T) {
	for _, key := range []string{"path", "mtime", "atime", "size", "GNU.sparse.map"} {
		t.Run(key, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			File("f", 0o644, "").PAX(key, "1")
		})
	}
}
