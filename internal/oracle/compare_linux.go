package oracle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// CompareMount mounts image read-only through a loop device and fails t
// unless every entry reads back as SPEC's tar rules say the tar at tarPath
// should: type, mode with setuid/setgid/sticky, uid, gid, size and SHA-256
// of regular files, symlink targets, device numbers, every xattr, mtime to
// the nanosecond, link counts and hardlink identity. Paths in the image
// that the tar lacks fail, except lost+found (root:root 0700) and those
// given to IgnoreExtra. All differences go into one message.
//
// The tar may be plain or gzip-compressed. CompareMount needs Linux and
// root; without them it skips the test, or fails it when CI is set. The
// image is unmounted and its loop device detached before it returns.
func CompareMount(t testing.TB, tarPath, image string, opts ...CompareOption) {
	t.Helper()
	requireMount(t)
	diffs, err := MountDiff(tarPath, image, opts...)
	failOnDiffs(t, image, "tar "+tarPath, diffs, err)
}

// requireMount skips or fails t (see skipOrFail) when loop mounts are not
// possible: not root, or no losetup.
func requireMount(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "mounting an image through a loop device needs root")
	}
	requireTool(t, "losetup", "mount")
}

// MountDiff is CompareMount for callers without a testing.TB: it returns
// the differences instead of failing. The error reports a tar the rules
// reject, or a failure to mount, read or unmount.
func MountDiff(tarPath, image string, opts ...CompareOption) (diffs []Difference, err error) {
	o := &compareOptions{mounted: true}
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	// Read the tar first, so a bad tar never leaves a mount behind.
	exp, err := expectedTree(tarPath)
	if err != nil {
		return nil, err
	}
	got, err := readMounted(image)
	if err != nil {
		return nil, err
	}
	return diffTrees(exp, got, o), nil
}

// readMounted mounts image read-only, reads its tree and unmounts it.
func readMounted(image string) (got map[string]*node, err error) {
	dir, unmount, err := mountImage(image)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, unmount()) }()
	got, err = readTree(dir)
	if err != nil {
		return nil, fmt.Errorf("oracle: reading mounted %s: %w", image, err)
	}
	return got, nil
}

// DirDiff compares the directory tree at dir, for example one `tar -xp`
// extracted as root, with the tar. The root directory is compared only if
// the tar has a "." entry, and lost+found is not expected.
func DirDiff(tarPath, dir string, opts ...CompareOption) ([]Difference, error) {
	o := &compareOptions{}
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	exp, err := expectedTree(tarPath)
	if err != nil {
		return nil, err
	}
	got, err := readTree(dir)
	if err != nil {
		return nil, fmt.Errorf("oracle: reading %s: %w", dir, err)
	}
	return diffTrees(exp, got, o), nil
}

// mountImage attaches image to a read-only loop device and mounts it
// read-only at a new temporary directory. noload skips journal replay,
// which would otherwise write to a dirty image even on a ro mount.
// unmount undoes all of it and is safe to call once.
func mountImage(image string) (dir string, unmount func() error, err error) {
	dir, err = os.MkdirTemp("", "oracle-mnt-")
	if err != nil {
		return "", nil, err
	}
	out, err := command("losetup", "--find", "--show", "--read-only", image).CombinedOutput()
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("oracle: losetup %s: %w: %s", image, err, out), os.Remove(dir))
	}
	dev := strings.TrimSpace(string(out))
	detach := func() error {
		if out, err := command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			return fmt.Errorf("oracle: losetup --detach %s: %w: %s", dev, err, out)
		}
		return nil
	}
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount(dev, dir, "ext4", flags, "noload"); err != nil {
		return "", nil, errors.Join(fmt.Errorf("oracle: mounting %s (%s) read-only: %w (see dmesg)", image, dev, err), detach(), os.Remove(dir))
	}
	unmount = func() error {
		var err error
		// Something walking the tree a moment ago may still hold it busy.
		for range 20 {
			if err = unix.Unmount(dir, 0); err != unix.EBUSY {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			// A lazy unmount still lets the loop device go once it is idle.
			err = errors.Join(fmt.Errorf("oracle: unmounting %s: %w", dir, err), unix.Unmount(dir, unix.MNT_DETACH))
		}
		return errors.Join(err, detach(), os.Remove(dir))
	}
	return dir, unmount, nil
}

// readTree reads every entry under root with lstat, hashing regular files
// and reading symlink targets and xattrs.
func readTree(root string) (map[string]*node, error) {
	nodes := make(map[string]*node)
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			rel = ""
		}
		n, err := readNode(p)
		if err != nil {
			return err
		}
		nodes[filepath.ToSlash(rel)] = n
		return nil
	})
	return nodes, err
}

func readNode(p string) (*node, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	n := &node{
		perm:     st.Mode & 0o7777,
		uid:      st.Uid,
		gid:      st.Gid,
		mtime:    time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)), // Sec and Nsec are int32 on 32-bit GOARCHes
		hasMtime: true,
		size:     st.Size,
		ino:      st.Ino,
		nlink:    uint64(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		n.kind = kindDir
	case unix.S_IFREG:
		n.kind = kindReg
		sum, err := hashFile(p)
		if err != nil {
			return nil, err
		}
		n.sum = sum
	case unix.S_IFLNK:
		n.kind = kindSymlink
		target, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		n.target = target
	case unix.S_IFCHR, unix.S_IFBLK:
		n.kind = kindChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			n.kind = kindBlock
		}
		n.major, n.minor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)) // Rdev is uint32 on mips
	case unix.S_IFIFO:
		n.kind = kindFifo
	case unix.S_IFSOCK:
		n.kind = kindSocket
	default:
		return nil, fmt.Errorf("%s: unknown file type %#o", p, st.Mode&unix.S_IFMT)
	}
	xattrs, err := readXattrs(p)
	if err != nil {
		return nil, err
	}
	n.xattrs = xattrs
	return n, nil
}

func hashFile(p string) (sum [sha256.Size]byte, err error) {
	// O_NOFOLLOW: the path was lstat'ed as a regular file; never follow a
	// symlink that replaced it.
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("reading %s: %w", p, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// readXattrs returns every xattr of p itself (not a symlink's target), in
// every namespace root can read: user, trusted, security, system.
func readXattrs(p string) (map[string]string, error) {
	var names []byte
	for {
		size, err := unix.Llistxattr(p, nil)
		if err != nil {
			return nil, &fs.PathError{Op: "llistxattr", Path: p, Err: err}
		}
		if size == 0 {
			return nil, nil
		}
		names = make([]byte, size)
		size, err = unix.Llistxattr(p, names)
		if err == unix.ERANGE {
			continue // the list grew between the two calls
		}
		if err != nil {
			return nil, &fs.PathError{Op: "llistxattr", Path: p, Err: err}
		}
		names = names[:size]
		break
	}
	xattrs := make(map[string]string)
	for name := range strings.SplitSeq(strings.TrimSuffix(string(names), "\x00"), "\x00") {
		if name == "" {
			// overlayfs sizes the list with its own hidden names, then
			// leaves them out: the list may come back empty.
			continue
		}
		val, err := getXattr(p, name)
		if err != nil {
			return nil, err
		}
		xattrs[name] = val
	}
	return xattrs, nil
}

func getXattr(p, name string) (string, error) {
	for {
		size, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return "", &fs.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		buf := make([]byte, size)
		size, err = unix.Lgetxattr(p, name, buf)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return "", &fs.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		return string(buf[:size]), nil
	}
}

// CompareMountWithDir is CompareMount with a directory tree as the
// reference instead of a tar: the image must read back as the tree at
// want reads, entry by entry, hardlink identity included (names that
// share an inode under want must share one in the image). The root's own
// metadata is compared too (ocitest.Reference gives its root what SPEC
// gives an image's: see there), and the image's lost+found is expected as
// mke2fs makes it. It is the judge of images built from container image
// layers, with the kernel's overlayfs over the extracted layers as want.
func CompareMountWithDir(t testing.TB, want, image string, opts ...CompareOption) {
	t.Helper()
	requireMount(t)
	diffs, err := MountDiffDir(want, image, opts...)
	failOnDiffs(t, image, "the tree at "+want, diffs, err)
}

// failOnDiffs fails t with err, or with every difference between image
// and what it was compared with.
func failOnDiffs(t testing.TB, image, with string, diffs []Difference, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Fatalf("image %s differs from %s in %d ways:\n%s", image, with, len(diffs), formatDiffs(diffs))
	}
}

// MountDiffDir is CompareMountWithDir returning the differences.
func MountDiffDir(want, image string, opts ...CompareOption) (diffs []Difference, err error) {
	o := &compareOptions{mounted: true}
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	read, err := readTree(want)
	if err != nil {
		return nil, fmt.Errorf("oracle: reading %s: %w", want, err)
	}
	exp := &tree{nodes: map[string]*node{}}
	byIno := map[uint64]*node{}
	for p, n := range read {
		if n.kind != kindDir && n.nlink > 1 {
			if first, ok := byIno[n.ino]; ok {
				exp.nodes[p] = first
				continue
			}
			byIno[n.ino] = n
		}
		n.hasMtime = true
		exp.nodes[p] = n
	}
	got, err := readMounted(image)
	if err != nil {
		return nil, err
	}
	// The root is compared as every directory is: exp.rootEntry says its
	// metadata is known.
	exp.rootEntry = true
	return diffTrees(exp, got, o), nil
}
