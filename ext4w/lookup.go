package ext4w

import (
	"path"
	"strings"
)

// EntryInfo describes an entry of the image being written, for callers
// that follow its namespace (tarflat finding /bin/sh's executable).
type EntryInfo struct {
	Type     FileType
	Linkname string // a symlink's target
	// ID is the same for every name of one inode (hardlinks) and differs
	// between inodes. It is valid while the Writer is open.
	ID uint32
}

// fileType maps the inode's i_mode back to a FileType.
func (n *inode) fileType() FileType {
	switch n.mode & 0xF000 {
	case sIFDIR:
		return TypeDir
	case sIFLNK:
		return TypeSymlink
	case sIFCHR:
		return TypeCharDev
	case sIFBLK:
		return TypeBlockDev
	case sIFIFO:
		return TypeFifo
	case sIFSOCK:
		return TypeSocket
	}
	return TypeRegular
}

// linkname is a symlink's target; slow symlinks keep it in data blocks,
// which the writer does not read back, so it keeps a copy in ext.
func (w *Writer) linkname(n *inode) string {
	if n.ext == nil {
		return ""
	}
	if n.ext.link != "" {
		return n.ext.link
	}
	return n.ext.slowLink
}

// Lstat describes name without following a symlink at its end.
func (w *Writer) Lstat(name string) (EntryInfo, error) {
	parts, err := splitName(name)
	if err != nil {
		return EntryInfo{}, err
	}
	id, err := w.lookup(parts)
	if err != nil {
		return EntryInfo{}, err
	}
	return w.info(id), nil
}

func (w *Writer) info(id uint32) EntryInfo {
	n := w.nodes.at(id)
	return EntryInfo{Type: n.fileType(), Linkname: w.linkname(n), ID: id}
}

// maxSymlinkHops is Linux's limit on symlinks followed in one lookup
// (MAXSYMLINKS).
const maxSymlinkHops = 40

// Resolve looks name up as the kernel would in a chroot at the image's
// root: symlinks are followed, the last one too, and ".." stops at the
// root. It returns the resolved name and what it is.
func (w *Writer) Resolve(name string) (string, EntryInfo, error) {
	comps := strings.Split(name, "/")
	cur, curPath, hops := uint32(1), ".", 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur, curPath = w.nodes.at(cur).dir.parent, path.Dir(curPath)
			continue
		}
		i, ok := w.nodes.at(cur).dir.lookup(c)
		if !ok {
			return "", EntryInfo{}, ErrNotExist
		}
		id := w.nodes.at(cur).dir.ents[i].id
		n := w.nodes.at(id)
		switch {
		case n.isLnk():
			if hops++; hops > maxSymlinkHops {
				return "", EntryInfo{}, ErrNotExist
			}
			target := w.linkname(n)
			if strings.HasPrefix(target, "/") {
				cur, curPath = 1, "."
			}
			comps = append(strings.Split(target, "/"), comps...)
			continue
		case n.dir == nil && len(comps) > 0:
			return "", EntryInfo{}, &NotDirError{Path: path.Join(curPath, c), Type: n.fileType()}
		}
		cur, curPath = id, path.Join(curPath, c)
	}
	return curPath, w.info(cur), nil
}
