package ocitest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// Reference is the judge of an image built from layers: it extracts each
// layer (a plain tar, oldest first) into a directory of its own as
// containerd does for its overlayfs snapshotter, onto the mounted view of
// the layers below, and mounts the kernel's overlayfs read-only over all
// of them. It returns the merged directory; the mounts go when t ends.
//
// The extraction follows the OCI image-spec (layer.md) and overlayfs
// (Documentation/filesystems/overlayfs.rst):
//   - ".wh.NAME" becomes a 0:0 character device, overlayfs's whiteout,
//     if NAME exists below; a whiteout of nothing, or under what is not a
//     directory, does nothing and makes nothing (SPEC).
//   - ".wh..wh..opq" sets trusted.overlay.opaque=y on its directory.
//   - A directory the layer needs but has no entry for is made with the
//     metadata it has below (containerd's parents), not root:root 0755.
//   - A hardlink to a file of a lower layer links to a copy of it in the
//     layer (a copy-up), as containerd does.
//   - The root: a layer's root entry ("./") gives it that entry's owner,
//     mode, xattrs and mtime, as tar and docker apply it (containerd skips
//     a root entry, and its root is then its snapshotter's own directory,
//     made at run time: nothing an image could match). A layer without
//     one keeps the root below, and a root that no layer names is what
//     SPEC has ext4pack make: root:root 0755, with the newest mtime of any
//     header of any layer (SOURCE_DATE_EPOCH unset). overlayfs shows the
//     topmost layer's root, so each layer's root directory carries it.
//
// It needs root and Linux; it skips t, or fails it in CI, without them.
func Reference(t testing.TB, layers ...[]byte) string {
	t.Helper()
	oracle.RequireRoot(t, "mounting overlayfs")
	newest, err := newestMtime(layers)
	if err != nil {
		t.Fatalf("ocitest: %v", err)
	}
	base := t.TempDir()
	var dirs []string // oldest first
	for i, l := range layers {
		dir := filepath.Join(base, fmt.Sprintf("layer%d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		lower := view(t, base, fmt.Sprintf("below%d", i), dirs)
		x := &extractor{root: dir, lower: lower}
		if err := x.layer(l); err != nil {
			t.Fatalf("ocitest: extracting layer %d: %v", i, err)
		}
		if !x.rootNamed {
			if err := x.keepRoot(newest); err != nil {
				t.Fatalf("ocitest: the root of layer %d: %v", i, err)
			}
		}
		dirs = append(dirs, dir)
	}
	return view(t, base, "merged", dirs)
}

// newestMtime is the newest mtime of any header of the layers, whiteouts
// and hardlinks included.
func newestMtime(layers [][]byte) (time.Time, error) {
	var newest time.Time
	for i, l := range layers {
		tr := tar.NewReader(bytes.NewReader(l))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return newest, fmt.Errorf("layer %d: %w", i, err)
			}
			if h.ModTime.After(newest) {
				newest = h.ModTime
			}
		}
	}
	return newest, nil
}

// keepRoot gives the root of a layer that has no root entry the root
// below it, or, in the base layer, the root ext4pack makes: root:root
// 0755, no xattrs, the newest mtime of the layers. Called after the layer
// is extracted, whose entries moved the root's mtime.
func (x *extractor) keepRoot(newest time.Time) error {
	if x.lower == "" {
		if err := os.Lchown(x.root, 0, 0); err != nil {
			return err
		}
		if err := unix.Chmod(x.root, 0o755); err != nil {
			return err
		}
		return setTime(x.root, newest)
	}
	st, ok := lstat(x.lower)
	if !ok {
		return fmt.Errorf("no root below at %s", x.lower)
	}
	if err := copyMeta(x.lower, x.root, st); err != nil {
		return err
	}
	return setTime(x.root, time.Unix(st.Mtim.Unix()))
}

// view returns a directory showing dirs (oldest first) merged: none, one
// as it is, or overlayfs over several.
func view(t testing.TB, base, name string, dirs []string) string {
	t.Helper()
	switch len(dirs) {
	case 0:
		return ""
	case 1:
		return dirs[0]
	}
	mnt := filepath.Join(base, name)
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	lowers := slices.Clone(dirs)
	slices.Reverse(lowers) // overlayfs lists the top layer first
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("ocitest: mounting overlayfs (%s): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}

// extractor extracts one layer into root, with lower the merged view of
// the layers below ("" for the base layer).
type extractor struct {
	root, lower string
	// times to set once the layer is done (making children moves a
	// directory's mtime): directories by relative path.
	times map[string]time.Time
	// onlyForWhiteouts are the directories made only to hold whiteouts:
	// not the layer's own, so a whiteout of one removes it.
	onlyForWhiteouts map[string]bool
	entries          map[string]bool // the layer's own entries
	rootNamed        bool            // the layer has a root entry
}

// named reports whether the layer made q itself: an entry of its own, or
// a parent of one.
func (x *extractor) named(q string) bool {
	if x.entries[q] {
		return true
	}
	for e := range x.entries {
		if strings.HasPrefix(e, q+"/") {
			return true
		}
	}
	return false
}

func (x *extractor) layer(b []byte) error {
	x.times = map[string]time.Time{}
	x.onlyForWhiteouts = map[string]bool{}
	x.entries = map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if err := x.entry(name, h, tr); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	// Deepest first, so that setting a parent's time comes last.
	var ps []string
	for p := range x.times {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, p := range ps {
		if err := setTime(x.abs(p), x.times[p]); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) abs(p string) string { return filepath.Join(x.root, filepath.FromSlash(p)) }

// below is the lower view's path of p, "" when there is no lower view.
func (x *extractor) below(p string) string {
	if x.lower == "" {
		return ""
	}
	return filepath.Join(x.lower, filepath.FromSlash(p))
}

func lstat(p string) (unix.Stat_t, bool) {
	var st unix.Stat_t
	if p == "" {
		return st, false
	}
	return st, unix.Lstat(p, &st) == nil
}

func isDir(st unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// isWhiteout reports whether st is overlayfs's whiteout, a 0:0 char device.
func isWhiteout(st unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 }

func (x *extractor) entry(name string, h *tar.Header, r io.Reader) error {
	if name == "" {
		// The root: its metadata only.
		x.rootNamed = true
		return x.meta("", h, true)
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case base == ".wh..wh..opq":
		if !x.isDirInView(dir) {
			return nil
		}
		if err := x.parents(path.Join(dir, "x")); err != nil {
			return err
		}
		if err := x.ensureDir(dir); err != nil {
			return err
		}
		x.entries[dir] = true // the marker stands in it: the layer names it
		return unix.Lsetxattr(x.abs(dir), "trusted.overlay.opaque", []byte("y"), 0)
	case strings.HasPrefix(base, ".wh..wh."):
		return nil
	case strings.HasPrefix(base, ".wh."):
		victim := path.Join(dir, strings.TrimPrefix(base, ".wh."))
		if _, ok := lstat(x.below(victim)); !ok || x.underNonDir(victim) {
			// Nothing below to hide, or the layer made its parent a
			// file (umoci writes "dir2file" and then "dir2file/.wh.x").
			return nil
		}
		if err := x.parents(victim); err != nil {
			return err
		}
		for q := path.Dir(victim); q != "."; q = path.Dir(q) {
			if _, made := x.times[q]; made && !x.named(q) {
				x.onlyForWhiteouts[q] = true
			}
		}
		if x.onlyForWhiteouts[victim] {
			if err := os.RemoveAll(x.abs(victim)); err != nil {
				return err
			}
			delete(x.onlyForWhiteouts, victim)
			delete(x.times, victim)
		}
		if st, ok := lstat(x.abs(victim)); ok {
			// The layer's own entry stays; a directory of it loses
			// what is below it.
			if isDir(st) {
				return unix.Lsetxattr(x.abs(victim), "trusted.overlay.opaque", []byte("y"), 0)
			}
			return nil
		}
		return unix.Mknod(x.abs(victim), unix.S_IFCHR, 0)
	}
	if err := x.parents(name); err != nil {
		return err
	}
	for q := path.Dir(name); q != "."; q = path.Dir(q) {
		delete(x.onlyForWhiteouts, q) // an entry of the layer is under it
	}
	x.entries[name] = true
	p := x.abs(name)
	wasWhiteout := false
	if st, ok := lstat(p); ok {
		if isDir(st) && h.Typeflag == tar.TypeDir {
			return x.meta(name, h, true)
		}
		wasWhiteout = isWhiteout(st)
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		if wasWhiteout {
			// A whiteout of this layer hid the lower directory: the
			// new one must not show what was below.
			if err := unix.Lsetxattr(p, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return err
			}
		}
		return x.meta(name, h, true)
	case tar.TypeReg:
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := os.Symlink(h.Linkname, p); err != nil {
			return err
		}
	case tar.TypeLink:
		target := strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")
		if _, ok := lstat(x.abs(target)); !ok {
			if err := x.copyUp(target); err != nil {
				return fmt.Errorf("copying up the hardlink's target %s: %w", target, err)
			}
			x.entries[target] = true
		}
		return os.Link(x.abs(target), p)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFCHR)
		if h.Typeflag == tar.TypeBlock {
			mode = unix.S_IFBLK
		} else if h.Typeflag == tar.TypeFifo {
			mode = unix.S_IFIFO
		}
		if err := unix.Mknod(p, mode|0o600, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
			return err
		}
	default:
		return fmt.Errorf("typeflag %q", h.Typeflag)
	}
	return x.meta(name, h, false)
}

// underNonDir reports whether a directory above p is something else in
// the layer itself (a whiteout aside).
func (x *extractor) underNonDir(p string) bool {
	var q string
	for c := range strings.SplitSeq(path.Dir(p), "/") {
		q = path.Join(q, c)
		if st, ok := lstat(x.abs(q)); ok && !isDir(st) && !isWhiteout(st) {
			return true
		}
	}
	return false
}

// isDirInView reports whether p is a directory in the layer or below it.
func (x *extractor) isDirInView(p string) bool {
	if p == "" {
		return true
	}
	if st, ok := lstat(x.abs(p)); ok {
		return isDir(st)
	}
	st, ok := lstat(x.below(p))
	return ok && isDir(st)
}

// parents makes the directories above p in the layer.
func (x *extractor) parents(p string) error {
	dir := path.Dir(p)
	if dir == "." {
		return nil
	}
	var q string
	for c := range strings.SplitSeq(dir, "/") {
		q = path.Join(q, c)
		if err := x.ensureDir(q); err != nil {
			return err
		}
	}
	return nil
}

// ensureDir makes directory q in the layer if it is not there, with the
// metadata it has below (containerd's parents), or root:root 0755 when
// it is new.
func (x *extractor) ensureDir(q string) error {
	if q == "" {
		return nil
	}
	p := x.abs(q)
	if st, ok := lstat(p); ok {
		switch {
		case isDir(st):
			return nil
		case isWhiteout(st):
			// The layer removed q and now puts something under it: q
			// is new, and shows nothing of what was below.
			if err := os.Remove(p); err != nil {
				return err
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			return unix.Lsetxattr(p, "trusted.overlay.opaque", []byte("y"), 0)
		}
		return fmt.Errorf("%s is not a directory in the layer", q)
	}
	st, ok := lstat(x.below(q))
	if ok && !isDir(st) {
		return fmt.Errorf("%s is not a directory below the layer", q)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	if !ok {
		return nil
	}
	if err := copyMeta(x.below(q), p, st); err != nil {
		return err
	}
	x.times[q] = time.Unix(st.Mtim.Unix())
	return nil
}

// copyUp copies p from below into the layer, metadata and all.
func (x *extractor) copyUp(p string) error {
	st, ok := lstat(x.below(p))
	if !ok {
		return errors.New("not found below the layer")
	}
	if err := x.parents(p); err != nil {
		return err
	}
	src, dst := x.below(p), x.abs(p)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	default:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	if err := copyMeta(src, dst, st); err != nil {
		return err
	}
	return setTime(dst, time.Unix(st.Mtim.Unix()))
}

// copyMeta gives dst src's owner, mode and xattrs.
func copyMeta(src, dst string, st unix.Stat_t) error {
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, n := range names {
		v, err := getXattr(src, n)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, n, v, 0); err != nil {
			return fmt.Errorf("setting xattr %s: %w", n, err)
		}
	}
	return nil
}

// meta gives the layer's entry at name the header's owner, mode, xattrs
// and mtime; a directory's mtime waits for the end of the layer.
func (x *extractor) meta(name string, h *tar.Header, dir bool) error {
	p := x.abs(name)
	if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
		return err
	}
	if h.Typeflag != tar.TypeSymlink {
		// After chown, which clears setuid and setgid.
		if err := unix.Chmod(p, uint32(h.Mode)&0o7777); err != nil {
			return err
		}
	}
	for k, v := range h.PAXRecords {
		if n, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if err := unix.Lsetxattr(p, n, []byte(v), 0); err != nil {
				return fmt.Errorf("setting xattr %s: %w", n, err)
			}
		}
	}
	if dir {
		x.times[name] = h.ModTime
		return nil
	}
	return setTime(p, h.ModTime)
}

func setTime(p string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

func listXattrs(p string) ([]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var names []string
	for n := range strings.SplitSeq(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		// overlayfs's own, hidden in the merged view anyway.
		if n != "" && !strings.HasPrefix(n, "trusted.overlay.") {
			names = append(names, n)
		}
	}
	return names, nil
}

func getXattr(p, name string) ([]byte, error) {
	sz, err := unix.Lgetxattr(p, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Lgetxattr(p, name, buf)
	return buf[:sz], err
}
