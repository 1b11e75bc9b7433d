package oracle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// kind is a file type as both a tar header and stat(2) can name it.
type kind byte

const (
	kindDir     kind = 'd'
	kindReg     kind = 'f'
	kindSymlink kind = 'l'
	kindChar    kind = 'c'
	kindBlock   kind = 'b'
	kindFifo    kind = 'p'
	kindSocket  kind = 's' // never from a tar; only seen on a mount
)

func (k kind) String() string {
	switch k {
	case kindDir:
		return "directory"
	case kindReg:
		return "regular file"
	case kindSymlink:
		return "symlink"
	case kindChar:
		return "char device"
	case kindBlock:
		return "block device"
	case kindFifo:
		return "fifo"
	case kindSocket:
		return "socket"
	}
	return "unknown type " + strconv.Quote(string(k))
}

// node is one inode of the expected tree or of the tree read back. In the
// expected tree, paths that are hard links of each other hold the same
// *node; in the tree read back, ino and nlink carry that identity instead.
type node struct {
	kind     kind
	perm     uint32 // mode & 07777
	uid, gid uint32
	// mtime is compared only when hasMtime: the expected tree leaves it
	// unset for entries the tool creates (implicit parents, a root without
	// a "." entry, lost+found) unless CreatedMtime says what it is.
	mtime    time.Time
	hasMtime bool
	created  bool // made by the tool, not by a tar entry
	size     int64
	sum      [sha256.Size]byte
	target   string
	major    uint32
	minor    uint32
	xattrs   map[string]string
	ino      uint64 // read-back tree only
	nlink    uint64 // read-back tree only
}

// tree is a filesystem tree keyed by cleaned path; the root is "".
type tree struct {
	nodes     map[string]*node
	rootEntry bool // the tar had a "." entry, so the root's metadata is known
	newest    time.Time
}

// maxNameLen and maxTargetLen are ext4's EXT4_NAME_LEN and Linux's
// PATH_MAX-1, the limits SPEC's tar rules reject beyond.
const (
	maxNameLen   = 255
	maxTargetLen = 4095
)

// openTar opens a plain or gzip tar, told apart by gzip's magic bytes.
// zstd is refused with a clear error rather than misread: the oracle keeps
// to the standard library, and tests can build plain or gzip tars.
func openTar(tarPath string) (io.Reader, func() error, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("oracle: %s: %w", tarPath, err)
		}
		return zr, func() error { return errors.Join(zr.Close(), f.Close()) }, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		f.Close()
		return nil, nil, fmt.Errorf("oracle: %s: zstd tars are not supported by the oracle; decompress it first", tarPath)
	}
	return br, f.Close, nil
}

// expectedTree applies SPEC's "Tar input rules" to the tar at tarPath and
// returns the tree an image made from it must hold. It is a separate
// implementation from tarflat's, on purpose. Entries the tool creates get
// no mtime here; CreatedMtime sets one later.
func expectedTree(tarPath string) (*tree, error) {
	r, closeFn, err := openTar(tarPath)
	if err != nil {
		return nil, err
	}
	t, err := buildTree(r)
	if cerr := closeFn(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("oracle: %s: %w", tarPath, err)
	}
	return t, nil
}

func buildTree(r io.Reader) (*tree, error) {
	t := &tree{nodes: map[string]*node{"": createdDir(0o755)}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return t, nil
		}
		if err != nil {
			return nil, err
		}
		if hdr.ModTime.After(t.newest) {
			t.newest = hdr.ModTime
		}
		if err := t.add(hdr, tr); err != nil {
			return nil, fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
}

// createdDir is a directory the tool makes itself (root:root, mode perm).
func createdDir(perm uint32) *node {
	return &node{kind: kindDir, perm: perm, created: true}
}

// cleanName applies SPEC's name cleaning: drop a leading "./" or "/" and a
// trailing "/". It also resolves "." and ".." inside the name as a path
// lookup would, and rejects names that climb out of the root.
func cleanName(name string) (string, error) {
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("name %q climbs out of the root", name)
	}
	if c == "." {
		return "", nil
	}
	for comp := range strings.SplitSeq(c, "/") {
		if len(comp) > maxNameLen {
			return "", fmt.Errorf("name component of %d bytes (over %d)", len(comp), maxNameLen)
		}
	}
	return c, nil
}

// add applies one tar header, whose content body holds, to the tree.
func (t *tree) add(hdr *tar.Header, body io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	base, dir := path.Base(name), path.Dir(name)
	if dir == "." {
		dir = ""
	}
	if name == "" && hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("root entry of typeflag %q, not a directory", hdr.Typeflag)
	}
	if name != "" && strings.HasPrefix(base, ".wh.") {
		// A whiteout removes an earlier entry and is never written. The
		// opaque marker, and aufs's other .wh..wh. names, only concern a
		// lower layer, which a flat tar does not have.
		if !strings.HasPrefix(base, ".wh..wh.") {
			t.remove(path.Join(dir, base[len(".wh."):]))
		}
		return nil
	}
	if name != "" {
		if err := t.makeParents(name); err != nil {
			return err
		}
	}

	n := &node{
		perm:     uint32(hdr.Mode) & 0o7777,
		uid:      uint32(hdr.Uid),
		gid:      uint32(hdr.Gid),
		mtime:    clampExt4Time(hdr.ModTime),
		hasMtime: true,
	}
	if n.xattrs, err = paxXattrs(hdr.PAXRecords); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		n.kind = kindDir
		if old := t.nodes[name]; old != nil && old.kind == kindDir {
			// Keep the children: only the directory's own metadata changes.
			*old = *n
			t.rootEntry = t.rootEntry || name == ""
			return nil
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		// archive/tar expands sparse members; the reader sees the holes as
		// zeros. A contiguous file ('7') is a regular file to GNU tar,
		// bsdtar and archive/tar.
		n.kind = kindReg
		h := sha256.New()
		size, err := io.Copy(h, body)
		if err != nil {
			return err
		}
		n.size = size
		copy(n.sum[:], h.Sum(nil))
	case tar.TypeSymlink:
		n.kind = kindSymlink
		n.target = hdr.Linkname
		if len(n.target) > maxTargetLen {
			return fmt.Errorf("symlink target of %d bytes (over %d)", len(n.target), maxTargetLen)
		}
		if n.target == "" {
			return errors.New("symlink with an empty target")
		}
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink target: %w", err)
		}
		old := t.nodes[target]
		switch {
		case old == nil:
			return fmt.Errorf("hardlink to %q, which no earlier entry made", hdr.Linkname)
		case old.kind == kindDir:
			return fmt.Errorf("hardlink to directory %q", hdr.Linkname)
		case target == name:
			return nil // a link to itself changes nothing
		}
		// The link shares the target's inode, metadata included; the link
		// header's own mode, owner and xattrs are not used.
		t.remove(name)
		t.nodes[name] = old
		return nil
	case tar.TypeChar, tar.TypeBlock:
		n.kind = kindChar
		if hdr.Typeflag == tar.TypeBlock {
			n.kind = kindBlock
		}
		n.major, n.minor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeFifo:
		n.kind = kindFifo
	default:
		return fmt.Errorf("unsupported tar typeflag %q", hdr.Typeflag)
	}
	t.remove(name)
	t.nodes[name] = n
	return nil
}

// makeParents creates missing parents of name as implicit root:root 0755
// directories and rejects a parent that exists but is not a directory.
func (t *tree) makeParents(name string) error {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		p := name[:i]
		switch old := t.nodes[p]; {
		case old == nil:
			t.nodes[p] = createdDir(0o755)
		case old.kind != kindDir:
			return fmt.Errorf("parent %q is a %v, not a directory", p, old.kind)
		}
	}
	return nil
}

// remove deletes name and, for a directory, everything under it.
func (t *tree) remove(name string) {
	if name == "" {
		return // the root is never removed; a "." entry updates it instead
	}
	old := t.nodes[name]
	if old == nil {
		return
	}
	delete(t.nodes, name)
	if old.kind == kindDir {
		prefix := name + "/"
		for p := range t.nodes {
			if strings.HasPrefix(p, prefix) {
				delete(t.nodes, p)
			}
		}
	}
}

// paxXattrs collects xattrs from SCHILY.xattr.NAME records (raw value, as
// GNU tar and star write them) and LIBARCHIVE.xattr.NAME records (name
// %-encoded, value base64, as bsdtar writes them). bsdtar writes both for
// one xattr; if they disagree the LIBARCHIVE one wins, since base64 carries
// any byte.
func paxXattrs(recs map[string]string) (map[string]string, error) {
	var xattrs map[string]string
	set := func(k, v string) {
		if xattrs == nil {
			xattrs = make(map[string]string)
		}
		xattrs[k] = v
	}
	for k, v := range recs {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			set(name, v)
		}
	}
	// A second pass, so LIBARCHIVE records overwrite SCHILY ones.
	for k, v := range recs {
		enc, ok := strings.CutPrefix(k, "LIBARCHIVE.xattr.")
		if !ok {
			continue
		}
		name, err := urlDecode(enc)
		if err != nil {
			return nil, fmt.Errorf("PAX record %q: %w", k, err)
		}
		// libarchive pads with '='; accept unpadded values too.
		val, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
		if err != nil {
			return nil, fmt.Errorf("PAX record %q: value is not base64: %w", k, err)
		}
		set(name, string(val))
	}
	// Red Hat's tar (GNU tar --selinux) keeps an SELinux label in
	// RHT.security.selinux, without the NUL its xattr ends in: extracting,
	// GNU tar hands it to libselinux's setfilecon, which stores it with the
	// NUL. A raw security.selinux record wins. An empty label cannot be set
	// and is not expected.
	if v, ok := recs["RHT.security.selinux"]; ok && v != "" {
		if _, raw := xattrs["security.selinux"]; !raw {
			if !strings.HasSuffix(v, "\x00") {
				v += "\x00"
			}
			set("security.selinux", v)
		}
	}
	// GNU tar --acls and star keep POSIX ACLs as text in SCHILY.acl.access
	// and SCHILY.acl.default; extracted, they are the system.posix_acl_*
	// xattrs, which the kernel reads back in its own form (aclXattr). GNU
	// tar may write the raw xattr too: that one wins.
	for _, kind := range []string{"access", "default"} {
		text, ok := recs["SCHILY.acl."+kind]
		name := "system.posix_acl_" + kind
		if _, raw := xattrs[name]; !ok || raw {
			continue
		}
		v, err := aclXattr(text, kind == "access")
		if err != nil {
			return nil, fmt.Errorf("PAX record %q: %w", "SCHILY.acl."+kind, err)
		}
		if v != "" {
			set(name, v)
		}
	}
	return xattrs, nil
}

// aclXattr turns the text form of a POSIX ACL (acl(5): entries
// "tag:qualifier:perms", separated by commas or newlines, "#" comments;
// star adds the numeric id as a fourth field) into the value the kernel
// returns for its system.posix_acl_* xattr (posix_acl_to_xattr): version 2,
// then per entry a 16-bit tag, 16-bit perms and 32-bit id, little-endian,
// in the order posix_acl_valid demands (owner, named users by id, group,
// named groups by id, mask, other), and the id 0xffffffff
// (ACL_UNDEFINED_ID) for the entries that name no one. An access ACL of
// only owner, group and other is the mode itself, which the kernel stores
// as no xattr at all: "" then. A user or group named by name cannot be
// resolved here: an error, as ext4pack refuses it too.
//
// The mode is not derived from the ACL: GNU tar writes a file's mode with
// its group bits equal to the mask, and the kernel would set them so on
// extraction; a tar whose mode disagrees is not judged on that.
func aclXattr(text string, access bool) (string, error) {
	type entry struct {
		tag, perm uint16
		id        uint32
	}
	const undefined = 0xffffffff
	tags := map[string][2]uint16{"user": {0x01, 0x02}, "u": {0x01, 0x02}, "group": {0x04, 0x08}, "g": {0x04, 0x08},
		"mask": {0x10, 0x10}, "m": {0x10, 0x10}, "other": {0x20, 0x20}, "o": {0x20, 0x20}}
	var es []entry
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' }) {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 && len(f) != 4 {
			return "", fmt.Errorf("ACL entry %q: not tag:qualifier:perms", line)
		}
		tag, ok := tags[f[0]]
		if !ok {
			return "", fmt.Errorf("ACL entry %q: unknown tag", line)
		}
		e := entry{tag: tag[0], id: undefined}
		if f[1] != "" {
			if tag[0] == tag[1] {
				return "", fmt.Errorf("ACL entry %q: a %s entry names no one", line, f[0])
			}
			idText := f[1]
			if len(f) == 4 {
				idText = f[3]
			}
			id, err := strconv.ParseUint(idText, 10, 32)
			if err != nil {
				return "", fmt.Errorf("ACL entry %q: %q is not a numeric id", line, idText)
			}
			e.tag, e.id = tag[1], uint32(id)
		}
		if len(f[2]) != 3 {
			return "", fmt.Errorf("ACL entry %q: perms %q are not rwx", line, f[2])
		}
		for i, c := range []byte(f[2]) {
			switch c {
			case "rwx"[i]:
				e.perm |= 4 >> i
			case '-':
			default:
				return "", fmt.Errorf("ACL entry %q: perms %q are not rwx", line, f[2])
			}
		}
		es = append(es, e)
	}
	if len(es) == 0 {
		return "", fmt.Errorf("empty ACL %q", text)
	}
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].tag != es[j].tag {
			return es[i].tag < es[j].tag
		}
		return es[i].id < es[j].id
	})
	if access && len(es) == 3 && es[0].tag == 0x01 && es[1].tag == 0x04 && es[2].tag == 0x20 {
		return "", nil
	}
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range es {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return string(b), nil
}

// urlDecode undoes libarchive's %XX encoding of xattr names.
func urlDecode(s string) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			sb.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated %%-escape in %q", s)
		}
		b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad %%-escape in %q", s)
		}
		sb.WriteByte(byte(b))
		i += 2
	}
	return sb.String(), nil
}

// NewestMtime returns the newest mtime of any header in the tar (whiteouts
// and replaced entries included), which SPEC gives to the entries ext4pack
// creates when SOURCE_DATE_EPOCH is unset. Pass it to CreatedMtime.
func NewestMtime(tarPath string) (time.Time, error) {
	t, err := expectedTree(tarPath)
	if err != nil {
		return time.Time{}, err
	}
	return t.newest, nil
}

// ext4pack moves times that e2fsck would report as "likely pre-1970"
// (epoch bits 3 with the 32-bit field negative: 2310-04-04 to 2378-04-22,
// kernel Documentation/filesystems/ext4/inodes.rst "Inode Timestamps") to
// the second before them. Times outside ext4's 1901-2446 are clamped.
var (
	suspectFrom = time.Unix(3<<32-1<<31, 0)
	suspectTo   = time.Unix(3<<32, 0)
	ext4MinTime = time.Unix(-1<<31, 0)
	ext4MaxTime = time.Unix(1<<31-1+3<<32, 999999999)
)

// clampExt4Time is what ext4pack stores for t.
func clampExt4Time(t time.Time) time.Time {
	switch {
	case t.Before(ext4MinTime):
		return ext4MinTime
	case t.After(ext4MaxTime):
		return ext4MaxTime
	case !t.Before(suspectFrom) && t.Before(suspectTo):
		return suspectFrom.Add(-time.Nanosecond)
	}
	return t
}
