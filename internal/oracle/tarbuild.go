package oracle

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/tartest"
)

// DefaultMtime is the mtime NewTar gives entries that set none: fixed, with
// nanoseconds, so that a writer dropping them is caught by default. It is
// tartest's, which writes the tars.
var DefaultMtime = tartest.Mtime

// TarEntry is one member of a test tar. The zero value of a field means the
// obvious default: owner 0:0, mtime DefaultMtime, no xattrs.
type TarEntry struct {
	Name     string
	Type     byte  // a tar.Type* constant
	Mode     int64 // permission bits, setuid (04000), setgid (02000) and sticky (01000) included
	UID, GID int
	Mtime    time.Time
	Content  []byte // regular files only
	Linkname string // symlink target, or hardlink target (an earlier entry's name)
	Major    int64  // char and block devices
	Minor    int64
	// Xattrs are written as PAX SCHILY.xattr.NAME records (raw value).
	Xattrs map[string]string
	// LibarchiveXattrs are written as PAX LIBARCHIVE.xattr.NAME records,
	// as bsdtar does: the name URL-encoded and the value base64-encoded.
	LibarchiveXattrs map[string]string
	// PAX adds raw PAX records, for cases the fields above cannot express.
	PAX map[string]string
}

// Owner sets the entry's uid and gid.
func (e *TarEntry) Owner(uid, gid int) *TarEntry { e.UID, e.GID = uid, gid; return e }

// Time sets the entry's mtime; nanoseconds are kept (the tar is PAX).
func (e *TarEntry) Time(mtime time.Time) *TarEntry { e.Mtime = mtime; return e }

// Xattr adds an xattr written as a PAX SCHILY.xattr record.
func (e *TarEntry) Xattr(name, value string) *TarEntry {
	if e.Xattrs == nil {
		e.Xattrs = make(map[string]string)
	}
	e.Xattrs[name] = value
	return e
}

// LibarchiveXattr adds an xattr written as a PAX LIBARCHIVE.xattr record.
func (e *TarEntry) LibarchiveXattr(name, value string) *TarEntry {
	if e.LibarchiveXattrs == nil {
		e.LibarchiveXattrs = make(map[string]string)
	}
	e.LibarchiveXattrs[name] = value
	return e
}

// TarBuilder collects entries and writes them, in the order added, as a PAX
// tar in the test's temporary directory. Entries may be changed through the
// pointers the add methods return until Write is called.
type TarBuilder struct {
	t       testing.TB
	entries []*TarEntry
}

// NewTar returns an empty TarBuilder for t.
func NewTar(t testing.TB) *TarBuilder { return &TarBuilder{t: t} }

// Add appends e and returns a pointer to the stored copy.
func (b *TarBuilder) Add(e TarEntry) *TarEntry {
	p := &e
	b.entries = append(b.entries, p)
	return p
}

// Dir adds a directory.
func (b *TarBuilder) Dir(name string, mode int64) *TarEntry {
	return b.Add(TarEntry{Name: name, Type: tar.TypeDir, Mode: mode})
}

// File adds a regular file.
func (b *TarBuilder) File(name string, mode int64, content []byte) *TarEntry {
	return b.Add(TarEntry{Name: name, Type: tar.TypeReg, Mode: mode, Content: content})
}

// Symlink adds a symbolic link with mode 0777, as Linux reports symlinks.
func (b *TarBuilder) Symlink(name, target string) *TarEntry {
	return b.Add(TarEntry{Name: name, Type: tar.TypeSymlink, Mode: 0o777, Linkname: target})
}

// Hardlink adds a hard link to the earlier entry target. Its header copies
// the target's mode, owner and mtime, as GNU tar writes it.
func (b *TarBuilder) Hardlink(name, target string) *TarEntry {
	e := TarEntry{Name: name, Type: tar.TypeLink, Linkname: target}
	for _, prev := range b.entries {
		if prev.Name == target {
			e.Mode, e.UID, e.GID, e.Mtime = prev.Mode, prev.UID, prev.GID, prev.Mtime
		}
	}
	return b.Add(e)
}

// Char adds a character device.
func (b *TarBuilder) Char(name string, mode, major, minor int64) *TarEntry {
	return b.Add(TarEntry{Name: name, Type: tar.TypeChar, Mode: mode, Major: major, Minor: minor})
}

// Block adds a block device.
func (b *TarBuilder) Block(name string, mode, major, minor int64) *TarEntry {
	return b.Add(TarEntry{Name: name, Type: tar.TypeBlock, Mode: mode, Major: major, Minor: minor})
}

// Fifo adds a named pipe.
func (b *TarBuilder) Fifo(name string, mode int64) *TarEntry {
	return b.Add(TarEntry{Name: name, Type: tar.TypeFifo, Mode: mode})
}

// Write writes the tar to a new file in t.TempDir() and returns its path.
func (b *TarBuilder) Write() string {
	b.t.Helper()
	return tartest.Write(b.t, b.list()...)
}

// Bytes returns the tar itself, uncompressed.
func (b *TarBuilder) Bytes() []byte {
	b.t.Helper()
	return tartest.Bytes(b.t, b.list()...)
}

// WriteGzip is Write with gzip compression.
func (b *TarBuilder) WriteGzip() string {
	b.t.Helper()
	return tartest.WriteFile(b.t, "test.tar.gz", Gzip(b.t, b.Bytes()))
}

// list returns the entries as tartest writes them.
func (b *TarBuilder) list() []tartest.Entry {
	out := make([]tartest.Entry, len(b.entries))
	for i, e := range b.entries {
		out[i] = e.entry()
	}
	return out
}

// entry returns e's header and data. The header is PAX, which keeps
// nanoseconds, times outside 1970..2242, big ids and binary xattr values;
// a directory's name ends in "/".
func (e *TarEntry) entry() tartest.Entry {
	hdr := tar.Header{
		Typeflag:   e.Type,
		Name:       e.Name,
		Linkname:   e.Linkname,
		Mode:       e.Mode,
		Uid:        e.UID,
		Gid:        e.GID,
		ModTime:    e.Mtime,
		Devmajor:   e.Major,
		Devminor:   e.Minor,
		Format:     tar.FormatPAX,
		PAXRecords: make(map[string]string),
	}
	if e.Type == tar.TypeDir && !strings.HasSuffix(hdr.Name, "/") {
		hdr.Name += "/"
	}
	for k, v := range e.Xattrs {
		hdr.PAXRecords["SCHILY.xattr."+k] = v
	}
	for k, v := range e.LibarchiveXattrs {
		hdr.PAXRecords["LIBARCHIVE.xattr."+urlEncode(k)] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	for k, v := range e.PAX {
		hdr.PAXRecords[k] = v
	}
	var data []byte
	if e.Type == tar.TypeReg {
		data = e.Content
	}
	return tartest.Entry{Header: hdr, Data: data}
}

// urlEncode %-encodes every byte of an xattr name outside [A-Za-z0-9._-]
// (libarchive encodes at least '%', '=', controls and non-ASCII; encoding
// more is still decoded the same way).
func urlEncode(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

// Content returns n deterministic bytes derived from seed (SHA-256 in
// counter mode), so test files differ from each other and from zeros.
func Content(seed string, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	var ctr [8]byte
	for i := uint64(0); len(out) < n; i++ {
		binary.LittleEndian.PutUint64(ctr[:], i)
		sum := sha256.Sum256(append([]byte(seed), ctr[:]...))
		out = append(out, sum[:]...)
	}
	return out[:n]
}

// CapNetBindService is a security.capability value granting
// cap_net_bind_service+ep: struct vfs_cap_data (linux/capability.h) with
// magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE and bit 10
// (CAP_NET_BIND_SERVICE) in the low permitted word; 20 bytes, little-endian.
var CapNetBindService = func() string {
	var v [20]byte
	binary.LittleEndian.PutUint32(v[0:], 0x02000000|0x000001) // magic_etc
	binary.LittleEndian.PutUint32(v[4:], 1<<10)               // data[0].permitted
	// data[0].inheritable, data[1].permitted, data[1].inheritable stay 0.
	return string(v[:])
}()

// EveryTypeTar writes a tar holding every entry type a rootfs can hold and
// the corner cases SPEC names, and returns its path. Its content is fixed:
//
//   - "./" root entry (0755, 0:0) and explicit directories, except
//     opt/implicit and opt/implicit/child (implicit parents);
//   - regular files: empty, one block, 4 blocks exactly, not block-aligned,
//     1 MiB+17 bytes, one with a zero-filled middle, an all-zero one, and
//     etc/replaced written twice (the second copy wins);
//   - symlinks with 59-, 60- and 4095-byte targets, and bin -> usr/bin;
//   - a 3-name hardlink group across two directories;
//   - char dev/null (1,3), block dev/sda (8,0), block dev/big (300,70000)
//     which needs the new device encoding, and fifo run/initctl;
//   - usr/bin/passwd 04755, var/mail 02755 dir, tmp 01777, a 06755 file;
//   - uid/gid 100000:200000 and 65536:65537;
//   - a 255-byte name, UTF-8 names;
//   - mtimes in 1960 (with nanoseconds), at 0, at 2^31 s (2038), in 2040
//     and 2446, and 1 ns before a whole second;
//   - xattrs: security.capability (cap_net_bind_service+ep), a 2 KiB binary
//     user.big, trusted.*, an xattr on a directory, one LIBARCHIVE.xattr;
//   - POSIX ACLs in SCHILY.acl.access and SCHILY.acl.default text records,
//     and an SELinux label in an RHT.security.selinux record;
//   - manyfiles/, a 300-entry directory large enough for an htree.
func EveryTypeTar(t testing.TB) string {
	t.Helper()
	return everyType(t).Write()
}

// everyType builds EveryTypeTar's entries; the self-tests reuse it.
func everyType(t testing.TB) *TarBuilder {
	b := NewTar(t)
	file := func(name string, mode int64, size int) *TarEntry {
		return b.File(name, mode, Content(name, size))
	}

	b.Dir("./", 0o755)
	b.Dir("usr", 0o755)
	b.Dir("usr/bin", 0o755)
	b.Dir("usr/lib", 0o755)
	b.Symlink("bin", "usr/bin")
	b.File("usr/lib/os-release", 0o644, []byte("ID=oracle\nNAME=\"ext4pack oracle\"\n"))

	b.Dir("etc", 0o755).Xattr("user.dir", "on a directory")
	b.Symlink("etc/os-release", "../usr/lib/os-release")
	b.File("etc/hostname", 0o644, []byte("ext4pack\n"))
	b.File("etc/empty", 0o644, nil)
	b.File("etc/replaced", 0o600, []byte("first copy, must not survive\n")).Owner(7, 7)
	b.File("etc/replaced", 0o640, []byte("second copy\n")).Owner(0, 42)

	b.Dir("data", 0o755)
	file("data/one-block", 0o644, 4096)
	file("data/four-blocks", 0o644, 4*4096)
	file("data/unaligned", 0o644, 3*4096+123)
	file("data/big", 0o644, 1<<20+17)
	holes := Content("data/holes", 4096)
	holes = append(holes, make([]byte, 3*4096)...)
	holes = append(holes, Content("data/holes tail", 100)...)
	b.File("data/holes", 0o644, holes)
	b.File("data/zeros", 0o644, make([]byte, 2*4096))
	xa := file("data/xattrs", 0o644, 100)
	big := make([]byte, 2048)
	for i := range big {
		// Every 7th byte is NUL, the rest runs through all byte values.
		if i%7 != 0 {
			big[i] = byte(i * 31)
		}
	}
	xa.Xattr("user.big", string(big))
	xa.Xattr("user.small", "v")
	xa.Xattr("trusted.oracle", "trusted value")
	file("data/libarchive", 0o644, 10).LibarchiveXattr("user.libarchive", "bin\x00ary\xff")

	b.Dir("links", 0o755)
	b.Symlink("links/fast59", strings.Repeat("f", 59))
	b.Symlink("links/slow60", strings.Repeat("s", 60))
	long := strings.Repeat(strings.Repeat("l", 254)+"/", 16) // 4080 bytes
	long += strings.Repeat("t", 4095-len(long))
	b.Symlink("links/slow4095", long)

	b.Dir("hl", 0o755)
	file("hl/one", 0o640, 5000).Owner(1000, 1000)
	b.Hardlink("hl/two", "hl/one")
	b.Hardlink("usr/bin/three", "hl/one")

	b.Dir("dev", 0o755)
	b.Char("dev/null", 0o666, 1, 3)
	b.Block("dev/sda", 0o660, 8, 0).Owner(0, 6)
	b.Block("dev/big", 0o600, 300, 70000)
	b.Dir("run", 0o755)
	b.Fifo("run/initctl", 0o600)

	file("usr/bin/passwd", 0o4755, 3000)
	file("usr/bin/sgid-suid", 0o6755, 10).Owner(0, 5)
	file("usr/bin/ping", 0o755, 2000).Xattr("security.capability", CapNetBindService)
	b.Dir("var", 0o755)
	b.Dir("var/mail", 0o2755).Owner(0, 8)
	b.Dir("tmp", 0o1777)

	b.Dir("home", 0o755)
	b.Dir("home/big", 0o750).Owner(100000, 200000)
	file("home/big/file", 0o600, 10).Owner(100000, 200000).Xattr("user.owner", "big ids")
	file("home/big/edge", 0o644, 10).Owner(65536, 65537)

	b.Dir("names", 0o755)
	file("names/"+strings.Repeat("n", 250)+"-255b", 0o644, 10)
	file("names/héllo-wörld-日本語.txt", 0o644, 10)
	file("names/emoji-🚀", 0o644, 10)

	b.Dir("times", 0o755)
	file("times/y1960", 0o644, 10).Time(time.Date(1960, 3, 1, 0, 0, 0, 250000000, time.UTC))
	file("times/epoch0", 0o644, 10).Time(time.Unix(0, 0))
	file("times/y2038", 0o644, 10).Time(time.Unix(1<<31, 0))
	file("times/y2040", 0o644, 10).Time(time.Date(2040, 6, 1, 12, 0, 0, 123456789, time.UTC))
	file("times/y2446", 0o644, 10).Time(time.Date(2446, 1, 1, 0, 0, 0, 1, time.UTC))
	file("times/nanos", 0o644, 10).Time(time.Unix(1700000000, 999999999))
	b.Dir("times/dir1960", 0o755).Time(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))

	b.Dir("opt", 0o755)
	file("opt/implicit/child/file", 0o644, 10)

	// POSIX ACLs and an SELinux label as GNU tar --acls --selinux writes
	// them, as text records: a named user with a mask (the file's group
	// bits are the mask, as GNU tar writes them), a minimal access ACL
	// (the kernel keeps none), a default ACL out of order and
	// comma-separated, and a label without its NUL.
	b.Dir("acl", 0o755)
	b.File("acl/file", 0o640, []byte("acl\n")).PAX = map[string]string{
		"SCHILY.acl.access": "user::rw-\nuser:1000:r--\ngroup::r--\nmask::r--\nother::---\n"}
	b.Dir("acl/dir", 0o755).PAX = map[string]string{
		"SCHILY.acl.access":  "user::rwx\ngroup::r-x\nother::r-x\n",
		"SCHILY.acl.default": "other::r-x,mask::rwx,group:2000:r-x,group::r-x,user:1000:rwx,user::rwx"}
	b.File("acl/labelled", 0o644, []byte("selinux\n")).PAX = map[string]string{"RHT.security.selinux": "system_u:object_r:etc_t:s0"}

	b.Dir("manyfiles", 0o755)
	for i := range 300 {
		b.File(fmt.Sprintf("manyfiles/entry-with-a-longish-name-%04d", i), 0o644, []byte(fmt.Sprint(i)))
	}
	return b
}
