// Package tartest builds the tars that ext4pack's tests feed to the code
// under test. A test lists the entries, and Bytes, Offsets or Write turn
// the list into a tar:
//
//	in := tartest.Bytes(t,
//		tartest.Dir("etc/", 0o755),
//		tartest.File("etc/hostname", 0o644, "vm\n").Owner(0, 42),
//		tartest.Symlink("usr/bin/"+long, "../share/x").In(tar.FormatGNU),
//		tartest.File("usr/bin/ping", 0o4755, elf).PAX("SCHILY.xattr.security.capability", capability),
//	)
//
// Entries go through archive/tar's Writer, so every typeflag and format it
// writes is at hand; a test sets an Entry's Header fields for what no
// constructor names. For what that Writer refuses to write (v7 headers,
// GNU and PAX sparse members, sizes that disagree with the data, broken
// checksums), Raw, RawPAX, Pad and End build the blocks by hand.
//
// The package is imported only by tests, and imports nothing of ext4pack:
// the judges of internal/oracle build their tars with it too, without
// sharing a line with the code they judge.
package tartest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Mtime is the mtime of entries that set none: fixed, with nanoseconds,
// so that a reader or writer dropping them is caught. A format that cannot
// hold nanoseconds (archive/tar picks USTAR unless an entry needs more)
// rounds them away.
var Mtime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// Entry is one member of a test tar: the header archive/tar's Writer is
// given, and the data that follows it. Bytes, Offsets and Write set the
// header's Size to len(Data), and its ModTime to Mtime where it is zero.
type Entry struct {
	tar.Header
	Data []byte
}

// Dir is a directory. Its name is written as given, with or without the
// trailing slash.
func Dir(name string, mode int64) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}}
}

// File is a regular file holding data, a string or bytes.
func File[D ~string | ~[]byte](name string, mode int64, data D) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, Data: []byte(data)}
}

// Symlink is a symbolic link to target, with mode 0777 as Linux reports
// symlinks.
func Symlink(name, target string) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

// Hardlink is a hard link to target, the name of an earlier entry, with
// mode 0.
func Hardlink(name, target string) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}}
}

// Whiteout is an empty regular file with mode 0, as an OCI layer or a
// docker export marks a removal. The name is the whiteout's own:
// "etc/.wh.passwd", or "var/.wh..wh..opq" for an opaque directory.
func Whiteout(name string) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg}}
}

// Char is a character device.
func Char(name string, mode, major, minor int64) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeChar, Mode: mode, Devmajor: major, Devminor: minor}}
}

// Block is a block device.
func Block(name string, mode, major, minor int64) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeBlock, Mode: mode, Devmajor: major, Devminor: minor}}
}

// Fifo is a named pipe.
func Fifo(name string, mode int64) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeFifo, Mode: mode}}
}

// Owner returns e owned by uid and gid.
func (e Entry) Owner(uid, gid int) Entry {
	e.Uid, e.Gid = uid, gid
	return e
}

// Time returns e with mtime as its ModTime. archive/tar keeps its
// nanoseconds only when told to write PAX: In(tar.FormatPAX).
func (e Entry) Time(mtime time.Time) Entry {
	e.ModTime = mtime
	return e
}

// In returns e written in format f: tar.FormatUSTAR, FormatPAX or
// FormatGNU. archive/tar refuses an entry its format cannot hold.
func (e Entry) In(f tar.Format) Entry {
	e.Format = f
	return e
}

// PAX returns e with PAX records added, given as key, value, key,
// value...: xattrs (SCHILY.xattr.NAME, or LIBARCHIVE.xattr.NAME with the
// name URL-encoded and the value base64) and whatever else no header field
// holds. The records archive/tar derives from the header (path, size,
// mtime, atime, ...) and GNU.sparse.* panic, since its Writer would drop
// them without a word: set the header's fields, or write them with RawPAX.
// The records are copied: e's own are not changed.
func (e Entry) PAX(kv ...string) Entry {
	if len(kv)%2 != 0 {
		panic("tartest: PAX takes key, value pairs")
	}
	recs := maps.Clone(e.PAXRecords)
	if recs == nil {
		recs = make(map[string]string, len(kv)/2)
	}
	for i := 0; i < len(kv); i += 2 {
		if headerKeys[kv[i]] || strings.HasPrefix(kv[i], "GNU.sparse.") {
			panic(fmt.Sprintf("tartest: archive/tar drops the PAX record %q; set the header field or use RawPAX", kv[i]))
		}
		recs[kv[i]] = kv[i+1]
	}
	e.PAXRecords = recs
	return e
}

// headerKeys are the PAX records archive/tar's Writer makes from the
// header's fields, ignoring any given in PAXRecords.
var headerKeys = map[string]bool{
	"path": true, "linkpath": true, "size": true, "uid": true, "gid": true,
	"uname": true, "gname": true, "mtime": true, "atime": true, "ctime": true,
}

// Bytes writes entries, in order, with archive/tar and returns the tar,
// end-of-archive marker included. A header archive/tar refuses fails t.
func Bytes(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	b, _ := Offsets(t, entries...)
	return b
}

// Offsets is Bytes that also returns where each entry starts: its first
// header block, extended headers included, which is the offset a reader
// reports for the entry.
func Offsets(t testing.TB, entries ...Entry) ([]byte, []int64) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	offs := make([]int64, 0, len(entries))
	for _, e := range entries {
		// After Flush the writer has written all of the entry before.
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		offs = append(offs, int64(b.Len()))
		h := e.Header
		h.Size = int64(len(e.Data))
		if h.ModTime.IsZero() {
			h.ModTime = Mtime
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tartest: %s: %v", h.Name, err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			t.Fatalf("tartest: %s: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), offs
}

// Write writes the tar Bytes returns to test.tar in a new t.TempDir() and
// returns its path.
func Write(t testing.TB, entries ...Entry) string {
	t.Helper()
	return WriteFile(t, "test.tar", Bytes(t, entries...))
}

// WriteFile writes data, a tar made here or by hand, to name in a new
// t.TempDir() and returns its path.
func WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
