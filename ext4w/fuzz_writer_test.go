package ext4w_test

// fuzz_writer_test.go: FuzzWriter decodes its input into a sequence of
// Writer calls (Create of every type with names from a small alphabet,
// nested paths, modes, ids, times, xattrs big and small and ACLs; Write
// in chunks with zero blocks and holes; Link; Remove) and mirrors them in
// a model of the namespace. The writer must not panic; every error must
// be an *EntryError (a *SizeError at Close); a rejected call must change
// nothing; and a closed image must pass the self-check and read back
// exactly as the model says. Run on its seed corpus only (no -fuzz
// flag), it also has e2fsck judge each image.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// fuzzing reports whether the test binary runs with -fuzz: then only the
// pure-Go self-check judges, since e2fsck would cost a fork per input.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// fuzzIn hands out the fuzz input a byte at a time; past its end it
// gives zeros, so every input decodes to something.
type fuzzIn struct{ b []byte }

func (in *fuzzIn) u8() byte {
	if len(in.b) == 0 {
		return 0
	}
	v := in.b[0]
	in.b = in.b[1:]
	return v
}

func (in *fuzzIn) u16() uint16 { return uint16(in.u8()) | uint16(in.u8())<<8 }

func (in *fuzzIn) pick(n int) int { return int(in.u8()) % n }

// Name components: short, nested, the reserved lost+found, non-ASCII,
// long, and (below) a few invalid names. A component byte of 128 or more
// takes a number suffix from the next byte, so that a directory can
// hold enough names to be hashed.
var fuzzComponents = []string{"a", "b", "c", "d", "lost+found", "x.y", "ü", strings.Repeat("L", 250), "e"}

func (in *fuzzIn) name() string {
	switch in.u8() {
	case 250:
		return "." // the root
	case 251:
		return "../x"
	case 252:
		return "a//b"
	case 253:
		return strings.Repeat("M", 256)
	case 254:
		return "/abs"
	}
	n := 1 + in.pick(4)
	parts := make([]string, n)
	for i := range parts {
		c := in.u8()
		parts[i] = fuzzComponents[int(c)%len(fuzzComponents)]
		if c >= 128 {
			parts[i] += strconv.Itoa(int(in.u8()))
		}
	}
	return strings.Join(parts, "/")
}

var (
	fuzzIDs   = []uint32{0, 1, 1000, 65535, 65536, 1 << 31, 1<<32 - 1}
	fuzzSizes = []int{0, 1, 100, 4095, 4096, 4097, 8192, 3*4096 + 5, 65536, 1<<20 + 3, 3 << 20}
	// Times across ext4's range and past it (clamped), and in and
	// around e2fsck's "likely pre-1970" band of 2310-2378.
	fuzzTimes = []time.Time{{}, time.Unix(0, 1), time.Unix(-1<<31, 0), time.Unix(-1<<31-5, 0), time.Unix(-1, 999999999),
		time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC), time.Date(2100, 2, 28, 1, 2, 3, 456789, time.UTC),
		time.Unix(1<<31-1+2<<32, 999999999), time.Date(2350, 6, 7, 8, 9, 10, 11, time.UTC), time.Unix(3<<32, 5),
		time.Unix(1<<31-1+3<<32, 999999999),
		time.Unix(1<<35, 0), time.Date(2023, 3, 4, 5, 6, 7, 891011121, time.UTC)}
	fuzzXattrNames = []string{"user.a", "user.b", "trusted.t", "security.capability", "security.selinux",
		"user." + strings.Repeat("k", 255), "system.posix_acl_access", "system.posix_acl_default", "system.data",
		"bogus.x", "user.", "system.posix_acl_accessX", "user.é"}
	fuzzXattrSizes = []int{0, 1, 3, 20, 100, 1000, 2000, 4000, 4050, 5000}
)

func (in *fuzzIn) time() time.Time { return fuzzTimes[in.pick(len(fuzzTimes))] }

// acl makes a POSIX ACL value: mostly the version-2 xattr form with
// entries of any tag (valid ones, unknown ones), perms past rwx at times;
// or the version-1 disk form; or junk.
func (in *fuzzIn) acl() []byte {
	switch k := in.pick(8); {
	case k == 0:
		// The disk form, which the writer keeps as it is.
		v := []byte{1, 0, 0, 0}
		for i := in.pick(6); i > 0; i-- {
			v = binary.LittleEndian.AppendUint16(v, []uint16{1, 2, 4, 8, 0x10, 0x20, 0x99}[in.pick(7)])
			v = binary.LittleEndian.AppendUint16(v, uint16(in.pick(9)))
		}
		return v
	case k == 1:
		return []byte{byte(in.pick(4)), 0, 0}
	}
	tags := []uint16{1, 2, 4, 8, 0x10, 0x20, 0x40}
	var es []ext4w.ACLEntry
	if in.pick(2) == 0 {
		// A valid ACL: owner, named entries, mask, other.
		es = []ext4w.ACLEntry{{Tag: 1, Perm: uint16(in.pick(8))}, {Tag: 4, Perm: uint16(in.pick(8))}, {Tag: 0x20, Perm: uint16(in.pick(8))}}
		if n := in.pick(4); n > 0 {
			for i := 0; i < n; i++ {
				es = append(es, ext4w.ACLEntry{Tag: []uint16{2, 8}[in.pick(2)], Perm: uint16(in.pick(8)), ID: uint32(in.pick(5) * 1000)})
			}
			es = append(es, ext4w.ACLEntry{Tag: 0x10, Perm: uint16(in.pick(8))})
		}
	} else {
		for i := in.pick(7); i > 0; i-- {
			es = append(es, ext4w.ACLEntry{Tag: tags[in.pick(len(tags))], Perm: uint16(in.pick(9)), ID: uint32(in.pick(3))})
		}
	}
	// Shuffle by the input: the writer sorts them.
	for i := len(es) - 1; i > 0; i-- {
		j := in.pick(i + 1)
		es[i], es[j] = es[j], es[i]
	}
	return ext4w.EncodeACLXattr(es)
}

func (in *fuzzIn) xattrs() map[string][]byte {
	n := in.pick(5)
	if n == 0 || n > 3 {
		return nil
	}
	m := map[string][]byte{}
	for i := 0; i < n; i++ {
		name := fuzzXattrNames[in.pick(len(fuzzXattrNames))]
		if strings.HasPrefix(name, "system.posix_acl_") && !strings.HasSuffix(name, "X") {
			m[name] = in.acl()
			continue
		}
		size := fuzzXattrSizes[in.pick(len(fuzzXattrSizes))]
		m[name] = bytes.Repeat([]byte{in.u8() | 1}, size)
	}
	return m
}

// fileData makes size bytes in one of several patterns: all zeros (a
// hole), data, every other block zeros, a zero head or a zero tail.
func (in *fuzzIn) fileData(size int) []byte {
	b := make([]byte, size)
	pat, seed := in.pick(5), in.u8()
	for i := range b {
		blk := i / 4096
		var zero bool
		switch pat {
		case 0:
			zero = true
		case 2:
			zero = blk%2 == 1
		case 3:
			zero = i >= size/2
		case 4:
			zero = i < size/2
		}
		if !zero {
			b[i] = seed ^ byte(i*7+blk)
		}
	}
	return b
}

// mNode is the model's inode. Hardlinks share one.
type mNode struct {
	typ                ext4w.FileType
	perm, uid, gid     uint32
	size               int64
	data               [32]byte
	link               string
	major, minor       uint32
	xattrs             map[string][]byte
	times              [4]time.Time // atime, ctime, mtime, crtime as stored
	defaultTime        bool
	kids               map[string]*mNode
	links              int
	id                 int
	withBlockOverflows bool
}

// model mirrors the Writer's namespace rules.
type model struct {
	root    *mNode
	ids     int
	newest  time.Time
	hasNew  bool
	defTime *time.Time
}

func newModel() *model {
	m := &model{}
	m.root = m.dir(0o755, 0, 0)
	m.root.defaultTime = true
	return m
}

func (m *model) dir(perm, uid, gid uint32) *mNode {
	m.ids++
	return &mNode{typ: ext4w.TypeDir, perm: perm, uid: uid, gid: gid, kids: map[string]*mNode{}, id: m.ids}
}

// splitName is the Writer's name rule, written from its doc comment.
func modelSplit(name string) ([]string, bool) {
	if name == "." {
		return nil, true
	}
	if name == "" || name[0] == '/' {
		return nil, false
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || len(p) > 255 || strings.IndexByte(p, 0) >= 0 {
			return nil, false
		}
	}
	return parts, true
}

// clamp is the writer's time rule, nanoseconds kept: 1901 to 2446;
// and 2310-04-04 to 2378-04-22, which e2fsck takes for mis-encoded
// pre-1970 times (epoch bits 3, the 32-bit field negative), moved to the
// last nanosecond before 2310-04-04.
func clamp(t time.Time) time.Time {
	const lo, hi = -1 << 31, 1<<31 - 1 + 3<<32
	const bandFrom, bandTo = 3<<32 - 1<<31, 3 << 32
	switch s := t.Unix(); {
	case s < lo:
		return time.Unix(lo, 0).UTC()
	case s > hi:
		return time.Unix(hi, 999999999).UTC()
	case s >= bandFrom && s < bandTo:
		return time.Unix(bandFrom-1, 999999999).UTC()
	}
	return time.Unix(t.Unix(), int64(t.Nanosecond())).UTC()
}

// times gives the stored times of f: atime, ctime and crtime default to
// mtime, and no time at all is the epoch.
func storedTimes(f *ext4w.File) [4]time.Time {
	var out [4]time.Time
	for i, t := range []time.Time{f.Atime, f.Ctime, f.Mtime, f.Crtime} {
		if t.IsZero() {
			t = f.Mtime
		}
		if t.IsZero() {
			out[i] = time.Unix(0, 0).UTC()
			continue
		}
		out[i] = clamp(t)
	}
	return out
}

// lookupDir walks to the directory holding parts' last component,
// making missing directories when create is set. ok is false when a
// component is not a directory (or, without create, missing).
func (m *model) lookupDir(parts []string, create bool) (d *mNode, notDir, ok bool) {
	d = m.root
	for _, p := range parts[:len(parts)-1] {
		k := d.kids[p]
		if k == nil {
			if !create {
				return nil, false, false
			}
			k = m.dir(0o755, 0, 0)
			k.defaultTime = true
			d.kids[p] = k
		}
		if k.typ != ext4w.TypeDir {
			return nil, true, false
		}
		d = k
	}
	return d, false, true
}

// wouldMakeDirs reports whether lookupDir with create would make a
// directory: the model applies it only once the writer accepted the call.
func (m *model) unlink(n *mNode) {
	n.links--
	if n.typ == ext4w.TypeDir {
		for _, k := range n.kids {
			m.unlink(k)
		}
	}
}

// diskACL is the on-disk form the writer should store for an ACL value:
// version 1, entries by tag then id, short entries for the owner, group,
// mask and other.
func diskACL(v []byte) []byte {
	le := binary.LittleEndian
	if len(v) < 4 || le.Uint32(v) != 2 {
		return v
	}
	type ent struct {
		tag, perm uint16
		id        uint32
	}
	var es []ent
	for o := 4; o+8 <= len(v); o += 8 {
		es = append(es, ent{le.Uint16(v[o:]), le.Uint16(v[o+2:]), le.Uint32(v[o+4:])})
	}
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].tag != es[j].tag {
			return es[i].tag < es[j].tag
		}
		return es[i].id < es[j].id
	})
	out := le.AppendUint32(nil, 1)
	for _, e := range es {
		out = le.AppendUint16(out, e.tag)
		out = le.AppendUint16(out, e.perm)
		if e.tag == 2 || e.tag == 8 {
			out = le.AppendUint32(out, e.id)
		}
	}
	return out
}

// fuzzWriter runs one input. It returns the image path, or "" when the
// writer ended with an expected error.
func fuzzWriter(t *testing.T, data []byte) string {
	in := &fuzzIn{b: data}
	var opts []ext4w.Option
	flags := in.u8()
	fixed := flags&1 != 0
	if fixed {
		opts = append(opts, ext4w.WithSize(ext4w.MinSize))
	}
	if flags&2 != 0 {
		opts = append(opts, ext4w.WithInodes(uint64(20+in.pick(60))))
	}
	m := newModel()
	if flags&4 != 0 {
		d := in.time()
		m.defTime = &d
		opts = append(opts, ext4w.WithDefaultTime(d))
	}
	if flags&8 != 0 {
		opts = append(opts, ext4w.WithHashSeed([16]byte{in.u8(), in.u8(), 3}))
	}
	img := filepath.Join(t.TempDir(), "fuzz.img")
	out, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w, err := ext4w.NewWriter(out, opts...)
	if err != nil {
		t.Fatal(err)
	}
	trace := os.Getenv("EXT4W_FUZZ_TRACE") != "" // to see what an input does
	var paths []string                           // names made so far, for Link and Remove to pick from
	budget := 8 << 20                            // bytes of file data an input may write
	sticky := false
	for ops := 0; len(in.b) > 0 && ops < 64 && !sticky; ops++ {
		op := in.u8()
		var name string
		var err error
		var f *ext4w.File
		var data []byte
		var chunk int
		short := false
		switch op % 10 {
		case 0, 1, 2, 3, 4, 5:
			// Create: the type, then the metadata.
			f = &ext4w.File{Mode: uint32(in.u16()) & 0o7777, Uid: fuzzIDs[in.pick(len(fuzzIDs))], Gid: fuzzIDs[in.pick(len(fuzzIDs))],
				Mtime: in.time()}
			if in.pick(4) == 0 {
				f.Atime, f.Ctime, f.Crtime = in.time(), in.time(), in.time()
			}
			if in.pick(16) == 0 {
				f.Mode |= 0o10000 // beyond the permission bits: refused
			}
			f.Xattrs = in.xattrs()
			name = in.name()
			switch op % 10 {
			case 0, 1:
				f.Type = ext4w.TypeRegular
				size := fuzzSizes[in.pick(len(fuzzSizes))]
				if size > budget {
					size = 0
				}
				budget -= size
				f.Size = int64(size)
				data = in.fileData(size)
				chunk = []int{1, 1000, 4096, 65536, 1 << 30}[in.pick(5)]
				if chunk == 1 && size > 8192 {
					chunk = 1000 // a million one-byte writes only cost time
				}
				short = op == 250 && size > 0
			case 2:
				f.Type = ext4w.TypeDir
			case 3:
				f.Type = ext4w.TypeSymlink
				n := []int{0, 1, 30, 59, 60, 61, 200, 4095, 4096}[in.pick(9)]
				f.Linkname = strings.Repeat(string(rune('a'+in.pick(26))), n)
			case 4:
				f.Type = []ext4w.FileType{ext4w.TypeCharDev, ext4w.TypeBlockDev}[in.pick(2)]
				f.Devmajor = []uint32{0, 1, 8, 255, 256, 4095, 4096}[in.pick(7)]
				f.Devminor = []uint32{0, 3, 255, 256, 65536, 1<<20 - 1, 1 << 20}[in.pick(7)]
			case 5:
				f.Type = []ext4w.FileType{ext4w.TypeFifo, ext4w.TypeSocket, 0, 99}[in.pick(4)]
			}
			err = w.Create(name, f)
			if err == nil && f.Type == ext4w.TypeRegular && len(data) > 0 {
				err = writeChunks(w, data, chunk, short)
				if short {
					// The next call must report the missing bytes.
					err2 := w.Create("after-short-write", &ext4w.File{Type: ext4w.TypeDir})
					if !errors.Is(err2, ext4w.ErrShortWrite) {
						t.Fatalf("after a short write of %q: %v", name, err2)
					}
					sticky = true
					break
				}
				if err != nil {
					t.Fatalf("writing %q: %v", name, err)
				}
			}
			if sticky {
				break
			}
			m.applyCreate(t, name, f, data, err)
		case 6, 7:
			// Link: an existing name, or any.
			old := in.name()
			// The pick is read even with no names yet, so that an
			// input decodes the same whatever came before.
			if p := in.pick(4); len(paths) > 0 && p != 0 {
				old = paths[in.pick(len(paths))]
			}
			name = in.name()
			err = w.Link(old, name)
			m.applyLink(t, old, name, err)
		case 8:
			name = in.name()
			if p := in.pick(4); len(paths) > 0 && p != 0 {
				name = paths[in.pick(len(paths))]
			}
			err = w.Remove(name)
			m.applyRemove(t, name, err)
		case 9:
			// Many empty files in one directory: enough names for an
			// htree, with names short or long.
			dir := in.name()
			count := 8 * int(in.u8())
			pad := strings.Repeat("n", []int{0, 16, 100, 240}[in.pick(4)])
			f := &ext4w.File{Type: ext4w.TypeRegular, Mode: 0o644, Mtime: in.time()}
			for i := 0; i < count; i++ {
				name := fmt.Sprintf("%s/%s%05d", dir, pad, i)
				err := w.Create(name, f)
				m.applyCreate(t, name, f, nil, err)
				if err != nil {
					break // the directory could not be made: the rest fail alike
				}
			}
			if trace {
				t.Logf("op %d: %d files in %q", op, count, dir)
			}
			continue
		}
		if trace {
			t.Logf("op %d %q: %s: %v", op, name, describeFile(f), err)
		}
		if err != nil {
			var ee *ext4w.EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("op %d on %q: an error that is not an *EntryError: %T %v", op, name, err, err)
			}
		} else if name != "" {
			paths = append(paths, name)
		}
	}
	err = w.Close()
	if sticky {
		if err == nil {
			t.Fatal("Close succeeded after a short write")
		}
		return ""
	}
	var se *ext4w.SizeError
	if errors.As(err, &se) && (fixed || flags&2 != 0) {
		return ""
	}
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	m.compare(t, img)
	return img
}

func describeFile(f *ext4w.File) string {
	if f == nil {
		return ""
	}
	var xs []string
	for _, k := range slices.Sorted(maps.Keys(f.Xattrs)) {
		xs = append(xs, fmt.Sprintf("%s(%d)", k, len(f.Xattrs[k])))
	}
	return fmt.Sprintf("%v %#o %d:%d size %d link %d dev %d:%d mtime %v xattrs %v", f.Type, f.Mode, f.Uid, f.Gid, f.Size,
		len(f.Linkname), f.Devmajor, f.Devminor, f.Mtime.UTC(), xs)
}

// writeChunks writes data in chunks of n bytes; short leaves the last
// byte out. Zeros in chunks of 1000 and 4096 bytes go in as WriteHole,
// which must give the same image as writing them.
func writeChunks(w *ext4w.Writer, data []byte, n int, short bool) error {
	if short {
		data = data[:len(data)-1]
	}
	if n == 1000 || n == 4096 {
		n = -n
	}
	return writeSplit(w, data, n)
}

// refused reports whether err is a refusal the model cannot predict: a
// value the writer validates (ErrInvalid).
func refused(err error) bool { return errors.Is(err, ext4w.ErrInvalid) }

// noteNewest folds an entry's mtime into the default time. An entry
// with no time is stored at the epoch, and counts as such.
func (m *model) noteNewest(t time.Time) {
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	t = clamp(t)
	if !m.hasNew || t.After(m.newest) {
		m.newest, m.hasNew = t, true
	}
}

func (m *model) applyCreate(t *testing.T, name string, f *ext4w.File, data []byte, err error) {
	parts, ok := modelSplit(name)
	if !ok {
		if !errors.Is(err, ext4w.ErrBadName) {
			t.Fatalf("Create(%q): %v, want ErrBadName", name, err)
		}
		return
	}
	if refused(err) {
		return
	}
	// Past validation the entry's mtime counts for the default time,
	// even when the path then fails.
	m.noteNewest(f.Mtime)
	n := &mNode{typ: f.Type, perm: f.Mode, uid: f.Uid, gid: f.Gid, times: storedTimes(f), link: f.Linkname,
		major: f.Devmajor, minor: f.Devminor, xattrs: map[string][]byte{}}
	for k, v := range f.Xattrs {
		if strings.HasPrefix(k, "system.posix_acl_") && !strings.HasSuffix(k, "X") {
			v = diskACL(v)
		}
		n.xattrs[k] = v
	}
	switch f.Type {
	case ext4w.TypeRegular:
		n.size = f.Size
		n.data = sha256.Sum256(data)
	case ext4w.TypeSymlink:
		n.size = int64(len(f.Linkname))
	}
	if len(parts) == 0 {
		if f.Type != ext4w.TypeDir {
			if !errors.Is(err, ext4w.ErrNotDir) {
				t.Fatalf("Create(\".\", %v): %v, want ErrNotDir", f.Type, err)
			}
			return
		}
		m.expectOK(t, "Create", name, err)
		m.update(m.root, n)
		return
	}
	if _, notDir, ok := m.lookupDir(parts, false); !ok && notDir {
		if !errors.Is(err, ext4w.ErrNotDir) {
			t.Fatalf("Create(%q) under a non-directory: %v, want ErrNotDir", name, err)
		}
		return
	}
	m.expectOK(t, "Create", name, err)
	d, _, _ := m.lookupDir(parts, true)
	base := parts[len(parts)-1]
	if old := d.kids[base]; old != nil {
		if old.typ == ext4w.TypeDir && f.Type == ext4w.TypeDir {
			m.update(old, n)
			return
		}
		m.unlink(old)
	}
	m.ids++
	n.id, n.links = m.ids, 1
	if f.Type == ext4w.TypeDir {
		n.kids = map[string]*mNode{}
	}
	d.kids[base] = n
}

// update gives an existing directory new metadata, keeping its children.
func (m *model) update(d, n *mNode) {
	d.perm, d.uid, d.gid, d.times, d.xattrs, d.defaultTime = n.perm, n.uid, n.gid, n.times, n.xattrs, false
}

func (m *model) expectOK(t *testing.T, op, name string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s(%q): %v; the model expects success", op, name, err)
	}
}

func (m *model) find(parts []string) (*mNode, bool) {
	if len(parts) == 0 {
		return m.root, true
	}
	d, _, ok := m.lookupDir(parts, false)
	if !ok {
		return nil, false
	}
	n := d.kids[parts[len(parts)-1]]
	return n, n != nil
}

func (m *model) applyLink(t *testing.T, old, name string, err error) {
	op, ok1 := modelSplit(old)
	np, ok2 := modelSplit(name)
	if !ok1 || !ok2 || len(np) == 0 {
		if !errors.Is(err, ext4w.ErrBadName) {
			t.Fatalf("Link(%q, %q): %v, want ErrBadName", old, name, err)
		}
		return
	}
	target, ok := m.find(op)
	switch {
	case !ok:
		if !errors.Is(err, ext4w.ErrNotExist) {
			t.Fatalf("Link(%q, %q) to a missing target: %v", old, name, err)
		}
		return
	case target.typ == ext4w.TypeDir:
		if !errors.Is(err, ext4w.ErrIsDir) {
			t.Fatalf("Link(%q, %q) to a directory: %v", old, name, err)
		}
		return
	}
	if _, notDir, ok := m.lookupDir(np, false); !ok && notDir {
		if !errors.Is(err, ext4w.ErrNotDir) {
			t.Fatalf("Link(%q, %q) under a non-directory: %v", old, name, err)
		}
		return
	}
	if errors.Is(err, ext4w.ErrExist) && len(np) < len(op) && slices.Equal(op[:len(np)], np) {
		// Refusing to replace a directory that holds the name linked
		// to is a fine answer too: tar -x cannot do it either.
		return
	}
	m.expectOK(t, "Link", name, err)
	d, _, _ := m.lookupDir(np, true)
	base := np[len(np)-1]
	if cur := d.kids[base]; cur != nil {
		if cur == target {
			return
		}
		m.unlink(cur)
	}
	target.links++
	d.kids[base] = target
}

func (m *model) applyRemove(t *testing.T, name string, err error) {
	parts, ok := modelSplit(name)
	if !ok || len(parts) == 0 {
		if !errors.Is(err, ext4w.ErrBadName) {
			t.Fatalf("Remove(%q): %v, want ErrBadName", name, err)
		}
		return
	}
	d, notDir, ok := m.lookupDir(parts, false)
	if !ok {
		want := ext4w.ErrNotExist
		if notDir {
			want = ext4w.ErrNotDir
		}
		if !errors.Is(err, want) {
			t.Fatalf("Remove(%q): %v, want %v", name, err, want)
		}
		return
	}
	victim := d.kids[parts[len(parts)-1]]
	if victim == nil {
		if !errors.Is(err, ext4w.ErrNotExist) {
			t.Fatalf("Remove(%q) of a missing name: %v", name, err)
		}
		return
	}
	m.expectOK(t, "Remove", name, err)
	m.unlink(victim)
	delete(d.kids, parts[len(parts)-1])
}

// compare reads the image back and checks it against the model: the
// same paths, each with the model's metadata and content, and hardlinks
// sharing an inode.
func (m *model) compare(t *testing.T, img string) {
	t.Helper()
	got, err := ext4w.ReadBack(img)
	if err != nil {
		t.Fatalf("self-check:\n%v", err)
	}
	def := time.Unix(0, 0).UTC()
	switch {
	case m.defTime != nil:
		def = clamp(*m.defTime)
	case m.hasNew:
		def = m.newest
	}
	want := map[string]*mNode{}
	var walk func(p string, n *mNode)
	walk = func(p string, n *mNode) {
		want[p] = n
		for name, k := range n.kids {
			q := name
			if p != "." {
				q = p + "/" + name
			}
			if k.typ == ext4w.TypeDir {
				walk(q, k)
			} else {
				want[q] = k
			}
		}
	}
	walk(".", m.root)
	if _, ok := want["lost+found"]; !ok {
		lpf := &mNode{typ: ext4w.TypeDir, perm: 0o700, defaultTime: true, kids: map[string]*mNode{}, id: -1}
		want["lost+found"] = lpf
	}
	byID := map[int]uint32{}  // model inode -> image inode
	byIno := map[uint32]int{} // and back
	for _, p := range slices.Sorted(maps.Keys(want)) {
		n := want[p]
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing from the image", p)
			continue
		}
		ino, seen := byID[n.id]
		id, seenIno := byIno[g.Ino]
		if seen && ino != g.Ino || seenIno && id != n.id {
			t.Errorf("%s: inode %d does not match the hardlinks the model has", p, g.Ino)
		}
		byID[n.id], byIno[g.Ino] = g.Ino, n.id
		times := n.times
		if n.defaultTime {
			times = [4]time.Time{def, def, def, def}
		}
		var errs []string
		check := func(what string, ok bool, a, b any) {
			if !ok {
				errs = append(errs, fmt.Sprintf("%s %v, want %v", what, a, b))
			}
		}
		check("type", g.Type == n.typ, g.Type, n.typ)
		check("perm", g.Perm == n.perm, g.Perm, n.perm)
		check("uid:gid", g.Uid == n.uid && g.Gid == n.gid, [2]uint32{g.Uid, g.Gid}, [2]uint32{n.uid, n.gid})
		gt := [4]time.Time{g.Atime, g.Ctime, g.Mtime, g.Crtime}
		check("times (a, c, m, cr)", gt == times, gt, times)
		if !sameXattrs(g.Xattrs, n.xattrs) {
			check("xattrs", false, fmtXattrs(g.Xattrs), fmtXattrs(n.xattrs))
		}
		switch n.typ {
		case ext4w.TypeRegular:
			check("size", g.Size == n.size, g.Size, n.size)
			check("content", g.Data == n.data, g.Data, n.data)
			check("links", g.Links == n.links, g.Links, n.links)
		case ext4w.TypeSymlink:
			check("target", g.Linkname == n.link, g.Linkname, n.link)
		case ext4w.TypeCharDev, ext4w.TypeBlockDev:
			check("device", g.Devmajor == n.major && g.Devminor == n.minor, [2]uint32{g.Devmajor, g.Devminor}, [2]uint32{n.major, n.minor})
		}
		if len(errs) > 0 {
			t.Errorf("%s: %s", p, strings.Join(errs, "; "))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: in the image, but the model has no such name", p)
		}
	}
}

func sameXattrs(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func fmtXattrs(m map[string][]byte) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%x;", k, sha256.Sum256(m[k]))
	}
	return b.String()
}

// Seed encoders: each writes the bytes fuzzWriter decodes into the call
// it names, so the seeds say what they do.

// nm encodes a name of fuzzComponents indexes.
func nm(ci ...int) []byte {
	out := []byte{0, byte(len(ci) - 1)}
	for _, c := range ci {
		out = append(out, byte(c))
	}
	return out
}

// xa encodes an xattr of fuzzXattrNames[name] with fuzzXattrSizes[size]
// bytes of v.
func xa(name, size int, v byte) []byte { return []byte{byte(name), byte(size), v} }

// aclSeed encodes a valid ACL with n named entries (fuzzIn.acl), kept in
// the order given.
func aclSeed(name, named int) []byte {
	out := []byte{byte(name), 2, 0, 7, 5, 4, byte(named)}
	for i := 0; i < named; i++ {
		out = append(out, byte(i%2), 6, byte(i))
	}
	if named > 0 {
		out = append(out, 7)
	}
	for i := 3 + named + min(named, 1) - 1; i > 0; i-- {
		out = append(out, byte(i)) // pick(i+1) = i: no swap
	}
	return out
}

// meta encodes an entry's metadata: mode, fuzzIDs indexes, a fuzzTimes
// index, and xattrs (each from xa or aclSeed).
func meta(mode uint16, uid, gid, mt int, xattrs ...[]byte) []byte {
	out := []byte{byte(mode), byte(mode >> 8), byte(uid), byte(gid), byte(mt), 1, 1, byte(len(xattrs))}
	for _, x := range xattrs {
		out = append(out, x...)
	}
	return out
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// Ops: regular file (fuzzSizes index, fileData pattern, write chunk
// index), directory, symlink (length index), device, fifo or socket,
// link and remove of names.
func sReg(m, name []byte, size, pattern, chunk int) []byte {
	return cat([]byte{0}, m, name, []byte{byte(size), byte(pattern), 0x5A, byte(chunk)})
}
func sDir(m, name []byte) []byte        { return cat([]byte{2}, m, name) }
func sSym(m, name []byte, n int) []byte { return cat([]byte{3}, m, name, []byte{byte(n), 7}) }
func sDev(m, name []byte, blk, major, minor int) []byte {
	return cat([]byte{4}, m, name, []byte{byte(blk), byte(major), byte(minor)})
}
func sFifo(m, name []byte, sock int) []byte { return cat([]byte{5}, m, name, []byte{byte(sock)}) }
func sLink(old, name []byte) []byte         { return cat([]byte{6}, old, []byte{0}, name) }
func sRemove(name []byte) []byte            { return cat([]byte{8}, name, []byte{0}) }

// sMany makes 8*count files under dir, with names padded by fuzzIn's
// pad index.
func sMany(dir []byte, count, pad, mt int) []byte {
	return cat([]byte{9}, dir, []byte{byte(count), byte(pad), byte(mt)})
}

// fuzzSeeds are hand-written inputs that reach each kind of call; the
// fuzzer's own finds are in testdata/fuzz/FuzzWriter.
func fuzzSeeds() [][]byte {
	file := meta(0o644, 0, 0, 10)
	var seeds [][]byte
	seeds = append(seeds, []byte{})
	// Each size and data pattern, in nested directories.
	s := []byte{0}
	for i := range fuzzSizes {
		s = append(s, sReg(file, nm(i%4, i%3), i, i%5, i%5)...)
	}
	seeds = append(seeds, s)
	// Every type, hardlinks, replacing and removing.
	seeds = append(seeds, cat([]byte{0},
		sDir(meta(0o1777, 2, 3, 6), nm(0)),
		sSym(file, nm(0, 1), 3),
		sSym(file, nm(0, 2), 7),
		sDev(meta(0o666, 0, 0, 5), nm(1), 0, 1, 1),
		sDev(meta(0o660, 4, 4, 7), nm(2), 1, 5, 5),
		sFifo(file, nm(3), 0),
		sFifo(file, nm(5), 1),
		sReg(meta(0o4755, 5, 6, 8), nm(6), 5, 2, 2),
		sLink(nm(6), nm(4, 0)),
		sLink(nm(6), nm(0, 3)),
		sReg(file, nm(6), 1, 1, 1), // replaces the linked file
		sRemove(nm(0, 1)),
		sDir(meta(0o700, 0, 0, 9), nm(0)), // a directory over a directory
		sReg(file, nm(4), 2, 1, 1),        // a file over a directory
		sRemove(nm(4, 0)),
	))
	// Xattrs in the inode, in blocks (shared), and ACLs.
	big := xa(5, 6, 'k') // user.kkk… = 2000 bytes
	seeds = append(seeds, cat([]byte{0},
		sReg(meta(0o644, 0, 0, 2, xa(3, 3, 1), xa(0, 0, 0)), nm(0), 1, 1, 1),
		sReg(meta(0o644, 0, 0, 2, big, xa(2, 2, 3)), nm(1), 0, 0, 0),
		sReg(meta(0o644, 0, 0, 2, big, xa(2, 2, 3)), nm(2), 0, 0, 0),
		sDir(meta(0o755, 0, 0, 2, aclSeed(6, 2), aclSeed(7, 0)), nm(3)),
		sSym(meta(0o777, 0, 0, 2, xa(4, 5, 'z')), nm(4), 6),
		sReg(meta(0o644, 0, 0, 2, xa(12, 4, 9), xa(11, 2, 8)), nm(5), 0, 0, 0),
	))
	// Directories big enough to be hashed, then changed.
	seeds = append(seeds, cat([]byte{0},
		sMany(nm(3), 40, 0, 10),
		sMany(nm(3, 0), 100, 3, 10),
		sMany(nm(3), 10, 2, 10), // the same names again: replaced
		sRemove(nm(3, 0)),
		sMany(nm(4), 30, 1, 10),
	))
	// A fixed size, few inodes, a default time and a hash seed.
	seeds = append(seeds, append([]byte{15, 40, 6, 1, 2}, seeds[1][1:]...))
	// A short write: the writer must fail from then on.
	seeds = append(seeds, cat([]byte{0}, sReg(file, nm(0), 3, 1, 2), cat([]byte{250}, file, nm(1), []byte{4, 1, 1, 2})))
	return seeds
}

func FuzzWriter(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	judge := !fuzzing()
	f.Fuzz(func(t *testing.T, data []byte) {
		img := fuzzWriter(t, data)
		if img != "" && judge {
			oracle.Fsck(t, img)
		}
	})
}
