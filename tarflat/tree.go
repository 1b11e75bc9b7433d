package tarflat

import (
	"path"
	"strings"
)

// kind is an entry's file type as the tree model needs it.
type kind uint8

const (
	kDir kind = iota + 1
	kReg
	kSymlink
	kChar
	kBlock
	kFifo
)

func (k kind) String() string {
	switch k {
	case kDir:
		return "directory"
	case kReg:
		return "regular file"
	case kSymlink:
		return "symlink"
	case kChar:
		return "character device"
	case kBlock:
		return "block device"
	}
	return "fifo"
}

// tnode is what the tree keeps of one name: enough to resolve symlinks
// and answer Info's questions at the end, never file data.
type tnode struct {
	seq    int64 // when it was made; see tree.kills
	kind   kind
	target string  // symlinks
	elf    elfInfo // regular files: the ELF header, if it is an executable
	osID   string  // regular files named os-release: the ID= value
	osRead bool    // osID was looked for (the file was small enough)
	osHas  bool    // the file has an ID= line
}

// tree mirrors the namespace ext4w builds, so that tarflat can name the
// culprit when an entry goes under a non-directory or links to nothing,
// and resolve /bin/sh and /etc/os-release through symlinks once the whole
// tar is read. It follows the same rules as ext4w: later entries replace
// earlier ones, a directory over a directory keeps its children, and
// replacing or removing a directory drops everything under it.
type tree struct {
	seq   int64
	nodes map[string]tnode
	// kills[p] is when the subtree under p was last dropped (p removed or
	// replaced by a non-directory). A node is alive only if no ancestor
	// was dropped after the node was made; this spares a scan of every
	// name under p, which would make a replaced directory cost O(n).
	kills map[string]int64
}

func newTree() *tree { return &tree{nodes: map[string]tnode{}, kills: map[string]int64{}} }

// parent returns the directory holding p; the root's parent is itself.
func parent(p string) string { return path.Dir(p) }

// get returns the live node at p. The root is always a directory.
func (t *tree) get(p string) (tnode, bool) {
	if p == "." {
		return tnode{kind: kDir}, true
	}
	n, ok := t.nodes[p]
	if !ok || !t.alive(p, n.seq) {
		return tnode{}, false
	}
	return n, true
}

func (t *tree) alive(p string, seq int64) bool {
	if len(t.kills) == 0 {
		return true
	}
	for a := parent(p); a != "."; a = parent(a) {
		if k, ok := t.kills[a]; ok && k > seq {
			return false
		}
	}
	return true
}

// nonDirParent returns the ancestor of p that exists but is not a
// directory, if there is one (there can be at most one).
func (t *tree) nonDirParent(p string) (string, tnode, bool) {
	for d := parent(p); d != "."; d = parent(d) {
		n, ok := t.get(d)
		if !ok {
			continue
		}
		if n.kind == kDir {
			return "", tnode{}, false
		}
		return d, n, true
	}
	return "", tnode{}, false
}

// put records n at p, which ext4w has just accepted.
func (t *tree) put(p string, n tnode) {
	if p == "." {
		return // the root stays a directory; only its metadata changes
	}
	t.seq++
	n.seq = t.seq
	t.mkParents(p)
	if old, ok := t.get(p); ok && old.kind == kDir {
		if n.kind == kDir {
			return // a directory over a directory keeps its children
		}
		t.kills[p] = t.seq
	}
	t.nodes[p] = n
}

// remove drops p and everything under it.
func (t *tree) remove(p string) {
	t.seq++
	if old, ok := t.get(p); ok {
		if old.kind == kDir {
			t.kills[p] = t.seq
		}
		delete(t.nodes, p)
	}
}

// mkParents records p's missing parents as directories, as ext4w makes
// them.
func (t *tree) mkParents(p string) {
	for d := parent(p); d != "."; d = parent(d) {
		if _, ok := t.get(d); ok {
			return
		}
		t.nodes[d] = tnode{seq: t.seq, kind: kDir}
	}
}

// maxSymlinkHops is Linux's limit on symlinks followed in one lookup
// (MAXSYMLINKS, 40).
const maxSymlinkHops = 40

// resolve looks p up as the kernel would inside a chroot at the image's
// root: symlinks in the middle are followed, the last one too, ".." stops
// at the root. It returns the resolved name and its node.
func (t *tree) resolve(p string) (string, tnode, bool) {
	comps := strings.Split(p, "/")
	cur, hops := ".", 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = parent(cur)
			continue
		}
		next := path.Join(cur, c)
		n, ok := t.get(next)
		switch {
		case ok && n.kind == kSymlink:
			if hops++; hops > maxSymlinkHops {
				return "", tnode{}, false
			}
			if strings.HasPrefix(n.target, "/") {
				cur = "."
			}
			comps = append(strings.Split(n.target, "/"), comps...)
			continue
		case len(comps) > 0 && (!ok || n.kind != kDir):
			return "", tnode{}, false
		}
		cur = next
	}
	n, ok := t.get(cur)
	return cur, n, ok
}
