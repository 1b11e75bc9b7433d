package oracle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Difference is one way the tree read back differs from the tar.
type Difference struct {
	Path  string // "/" for the root, else "/"-prefixed
	Field string // exists, type, mode, uid, gid, mtime, size, sha256, target, device, xattr NAME, nlink, inode
	Want  string
	Got   string
}

// String renders d as "PATH: FIELD: want W, got G".
func (d Difference) String() string {
	return fmt.Sprintf("%s: %s: want %s, got %s", d.Path, d.Field, d.Want, d.Got)
}

// maxReported caps the differences a failure message lists.
const maxReported = 50

// formatDiffs renders diffs for a failure message, at most maxReported.
func formatDiffs(diffs []Difference) string {
	var sb strings.Builder
	for i, d := range diffs {
		if i == maxReported {
			fmt.Fprintf(&sb, "  ... and %d more\n", len(diffs)-maxReported)
			break
		}
		fmt.Fprintf(&sb, "  %v\n", d)
	}
	return sb.String()
}

// CompareOption changes what CompareMount, MountDiff and DirDiff accept.
type CompareOption func(*compareOptions) error

type compareOptions struct {
	ignoreExtra  []string
	skip         []string
	createdMtime time.Time
	hasCreated   bool
	ignoreFields []string
	// Set by the caller, not by options: a mounted image must have
	// lost+found and a root that is root:root 0755 when the tar has no
	// "." entry; an extracted directory needs neither.
	mounted bool
}

// IgnoreExtra allows paths, and everything under them, to exist in the
// image without a tar entry (guest files ext4pack adds). They are not
// compared. If the tar does have one of them, it is compared as usual.
// Default: none. Paths are cleaned like tar names; ".." is an error.
func IgnoreExtra(paths ...string) CompareOption {
	return func(o *compareOptions) error {
		cleaned, err := cleanPaths(paths)
		o.ignoreExtra = append(o.ignoreExtra, cleaned...)
		return err
	}
}

// Skip leaves paths, and everything under them, out of the comparison
// altogether: neither missing, extra nor different. Default: none.
func Skip(paths ...string) CompareOption {
	return func(o *compareOptions) error {
		cleaned, err := cleanPaths(paths)
		o.skip = append(o.skip, cleaned...)
		return err
	}
}

// CreatedMtime is the mtime expected of the entries ext4pack creates itself:
// implicit parent directories, the root when the tar has no "." entry, and
// lost+found. SPEC gives them SOURCE_DATE_EPOCH or else NewestMtime. By
// default their mtime is not compared.
func CreatedMtime(mtime time.Time) CompareOption {
	return func(o *compareOptions) error {
		if mtime.IsZero() {
			return errors.New("oracle: CreatedMtime: zero time")
		}
		o.createdMtime, o.hasCreated = mtime, true
		return nil
	}
}

// allFields are the field names IgnoreFields accepts.
var allFields = []string{"mode", "uid", "gid", "mtime", "mtime-nsec", "size", "sha256", "target", "device", "xattrs", "nlink", "inode"}

// IgnoreFields stops comparing the named fields everywhere: any of mode,
// uid, gid, mtime, mtime-nsec (nanoseconds only), size, sha256, target,
// device, xattrs, nlink, inode. It exists to judge images from other tools
// (mkfs.ext4 -d) in the oracle's self-tests; ext4pack's tests should not
// need it. Default: every field is compared.
func IgnoreFields(fields ...string) CompareOption {
	return func(o *compareOptions) error {
		for _, f := range fields {
			if !slices.Contains(allFields, f) {
				return fmt.Errorf("oracle: IgnoreFields: unknown field %q (known: %s)", f, strings.Join(allFields, ", "))
			}
		}
		o.ignoreFields = append(o.ignoreFields, fields...)
		return nil
	}
}

func cleanPaths(paths []string) ([]string, error) {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		c, err := cleanName(p)
		if err != nil {
			return nil, fmt.Errorf("oracle: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (o *compareOptions) apply(opts []CompareOption) error {
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return err
		}
	}
	return nil
}

// under reports whether p is one of roots or below one of them.
func under(p string, roots []string) bool {
	for _, r := range roots {
		if r == "" || p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func (o *compareOptions) ignores(field string) bool { return slices.Contains(o.ignoreFields, field) }

// display turns a tree path into the absolute path a user sees in the image.
func display(p string) string { return "/" + p }

// diffTrees compares the expected tree with the tree read back and returns
// every difference, sorted by path.
func diffTrees(exp *tree, got map[string]*node, o *compareOptions) []Difference {
	want := exp.nodes
	if !exp.rootEntry && !o.mounted {
		// An extracted directory's root is whatever directory the caller
		// made; only a "." entry says what it should be.
		delete(want, "")
		delete(got, "")
	}
	if o.mounted && want["lost+found"] == nil {
		want["lost+found"] = createdDir(0o700)
	}
	for _, n := range want {
		if n.created && o.hasCreated {
			n.mtime, n.hasMtime = clampExt4Time(o.createdMtime), true
		}
	}

	var diffs []Difference
	add := func(p, field, w, g string) {
		diffs = append(diffs, Difference{Path: display(p), Field: field, Want: w, Got: g})
	}

	// Links per expected inode, and subdirectories per directory read back.
	links := make(map[*node]int)
	for _, n := range want {
		links[n]++
	}
	subdirs := make(map[string]uint64)
	for p, g := range got {
		if g.kind == kindDir && p != "" {
			subdirs[parentOf(p)]++
		}
	}

	paths := make([]string, 0, len(want)+len(got))
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if want[p] == nil {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)

	var extraDirs []string // reported extra directories: their contents are not listed again
	for _, p := range paths {
		if under(p, o.skip) {
			continue
		}
		w, g := want[p], got[p]
		switch {
		case g == nil:
			add(p, "exists", "a "+w.kind.String(), "missing")
			continue
		case w == nil:
			if under(p, o.ignoreExtra) || under(p, extraDirs) {
				continue
			}
			add(p, "exists", "no entry", "extra "+g.kind.String())
			if g.kind == kindDir {
				extraDirs = append(extraDirs, p)
			}
			continue
		}
		if w.kind != g.kind {
			add(p, "type", w.kind.String(), g.kind.String())
			continue
		}
		diffs = append(diffs, diffNode(p, w, g, o)...)
		if !o.ignores("nlink") {
			wantLinks := uint64(links[w])
			if w.kind == kindDir {
				wantLinks = 2 + subdirs[p]
			}
			// With dir_nlink, a directory past ext4's EXT4_LINK_MAX (65000)
			// subdirectories has a link count of 1.
			if g.nlink != wantLinks && !(w.kind == kindDir && wantLinks > 65000 && g.nlink == 1) {
				add(p, "nlink", fmt.Sprint(wantLinks), fmt.Sprint(g.nlink))
			}
		}
	}
	if !o.ignores("inode") {
		diffs = append(diffs, diffLinks(want, got, o)...)
	}
	slices.SortStableFunc(diffs, func(a, b Difference) int { return strings.Compare(a.Path, b.Path) })
	return diffs
}

func parentOf(p string) string {
	if d := path.Dir(p); d != "." {
		return d
	}
	return ""
}

// diffNode compares the fields of one entry whose type matches.
func diffNode(p string, w, g *node, o *compareOptions) []Difference {
	var diffs []Difference
	add := func(field, want, got string) {
		if !o.ignores(field) {
			diffs = append(diffs, Difference{Path: display(p), Field: field, Want: want, Got: got})
		}
	}
	if w.perm != g.perm {
		add("mode", fmt.Sprintf("%04o", w.perm), fmt.Sprintf("%04o", g.perm))
	}
	if w.uid != g.uid {
		add("uid", fmt.Sprint(w.uid), fmt.Sprint(g.uid))
	}
	if w.gid != g.gid {
		add("gid", fmt.Sprint(w.gid), fmt.Sprint(g.gid))
	}
	if w.hasMtime && !o.ignores("mtime") {
		ws, gs := w.mtime.Unix(), g.mtime.Unix()
		wn, gn := w.mtime.Nanosecond(), g.mtime.Nanosecond()
		if o.ignores("mtime-nsec") {
			wn, gn = 0, 0
		}
		if ws != gs || wn != gn {
			add("mtime", formatTime(w.mtime), formatTime(g.mtime))
		}
	}
	switch w.kind {
	case kindReg:
		if w.size != g.size {
			add("size", fmt.Sprint(w.size), fmt.Sprint(g.size))
		}
		if w.sum != g.sum {
			add("sha256", hex.EncodeToString(w.sum[:]), hex.EncodeToString(g.sum[:]))
		}
	case kindSymlink:
		if w.target != g.target {
			add("target", formatValue(w.target), formatValue(g.target))
		}
	case kindChar, kindBlock:
		if w.major != g.major || w.minor != g.minor {
			add("device", fmt.Sprintf("%d:%d", w.major, w.minor), fmt.Sprintf("%d:%d", g.major, g.minor))
		}
	}
	if !o.ignores("xattrs") {
		names := make([]string, 0, len(w.xattrs)+len(g.xattrs))
		for k := range w.xattrs {
			names = append(names, k)
		}
		for k := range g.xattrs {
			if _, ok := w.xattrs[k]; !ok {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		for _, k := range names {
			wv, wok := w.xattrs[k]
			gv, gok := g.xattrs[k]
			switch {
			case !wok:
				add("xattr "+k, "absent", formatValue(gv))
			case !gok:
				add("xattr "+k, formatValue(wv), "absent")
			case wv != gv:
				add("xattr "+k, formatValue(wv), formatValue(gv))
			}
		}
	}
	return diffs
}

// diffLinks checks hardlink identity both ways: paths sharing an expected
// inode share one on the image, and paths sharing an image inode share an
// expected one. Directories cannot be hardlinked and are left out.
func diffLinks(want, got map[string]*node, o *compareOptions) []Difference {
	var diffs []Difference
	firstByWant := make(map[*node]string)
	firstByIno := make(map[uint64]string)
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		w, g := want[p], got[p]
		if g == nil || w.kind == kindDir || g.kind != w.kind || under(p, o.skip) {
			continue
		}
		if first, ok := firstByWant[w]; ok {
			if gf := got[first]; gf != nil && gf.ino != g.ino {
				diffs = append(diffs, Difference{display(p), "inode",
					"same inode as " + display(first) + " (hardlinked in the tar)",
					fmt.Sprintf("inode %d, %s has %d", g.ino, display(first), gf.ino)})
			}
		} else {
			firstByWant[w] = p
		}
		if first, ok := firstByIno[g.ino]; ok {
			if want[first] != w {
				diffs = append(diffs, Difference{display(p), "inode",
					"an inode of its own, not " + display(first) + "'s",
					fmt.Sprintf("inode %d, shared with %s", g.ino, display(first))})
			}
		} else {
			firstByIno[g.ino] = p
		}
	}
	return diffs
}

// formatTime shows a time exactly: UTC with nanoseconds, and the raw
// seconds, which make pre-1970 and post-2038 mistakes easy to see.
func formatTime(t time.Time) string {
	return fmt.Sprintf("%s (%d.%09d)", t.UTC().Format(time.RFC3339Nano), t.Unix(), t.Nanosecond())
}

// formatValue quotes short printable values and summarises binary ones.
func formatValue(v string) string {
	printable := utf8.ValidString(v) && strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
	if printable && len(v) <= 80 {
		return fmt.Sprintf("%q", v)
	}
	head := v
	if len(head) > 16 {
		head = head[:16]
	}
	sum := sha256.Sum256([]byte(v))
	return fmt.Sprintf("%d bytes starting %s, sha256 %s", len(v), hex.EncodeToString([]byte(head)), hex.EncodeToString(sum[:6]))
}
