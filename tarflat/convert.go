package tarflat

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
)

// Clean applies SPEC's name rules: a leading "./" or "/" and a trailing
// "/" go, and so do "." components and "x/.." pairs, as a path lookup
// would resolve them; "." is the root. A name that still climbs out of
// the root once cleaned ("../x", "a/../../x") is an error, and so is a
// component longer than 255 bytes or a NUL byte.
func Clean(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", errors.New("the name holds a NUL byte")
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errors.New(`the name climbs out of the root with ".."`)
	}
	for c := range strings.SplitSeq(p, "/") {
		if len(c) > MaxNameComponent {
			return "", fmt.Errorf("a name component is %d bytes, the limit is %d", len(c), MaxNameComponent)
		}
	}
	return p, nil
}

// Whiteouts, as the OCI image spec and aufs name them.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh." // aufs metadata; ".wh..wh..opq" marks an opaque directory
)

// convert turns a tar header into an Entry. skip is set for headers that
// change nothing in a flat image.
func (r *Reader) convert(h *tar.Header) (e *Entry, skip bool, err error) {
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil, true, globalHeader(h)
	}
	name, err := Clean(h.Name)
	if err != nil {
		return nil, false, err
	}
	e = &Entry{Name: name, Raw: h.Name, Op: OpCreate}
	if base := path.Base(name); name != "." && strings.HasPrefix(base, whiteoutPrefix) {
		return r.whiteout(e, base)
	}
	f := &e.File
	// Old tars repeat the file type in the mode's high bits: keep only
	// the permission bits, setuid, setgid and sticky.
	f.Mode = uint32(h.Mode) & 0o7777
	for _, id := range []struct {
		what string
		v    int
	}{{"uid", h.Uid}, {"gid", h.Gid}} {
		if id.v < 0 || int64(id.v) > 1<<32-1 {
			return nil, false, fmt.Errorf("%s %d is out of ext4's 32-bit range", id.what, id.v)
		}
	}
	f.Uid, f.Gid = uint32(h.Uid), uint32(h.Gid)
	// The decoder leaves AccessTime and ChangeTime zero where the format
	// has none (v7, ustar, a PAX header without atime); ext4w then uses
	// the mtime.
	f.Mtime, f.Atime, f.Ctime = h.ModTime, h.AccessTime, h.ChangeTime
	if v, ok := h.PAXRecords["LIBARCHIVE.creationtime"]; ok {
		if f.Crtime, err = paxTime(v); err != nil {
			return nil, false, fmt.Errorf("PAX record LIBARCHIVE.creationtime=%q: %v", v, err)
		}
	}
	if f.Xattrs, err = xattrs(h); err != nil {
		return nil, false, err
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		// Typeflag '7' (contiguous) asked the old systems that had them
		// for contiguous storage; GNU tar, bsdtar and archive/tar all
		// extract it as a regular file (SPEC "Tar input rules").
		if strings.HasSuffix(h.Name, "/") && name != "." {
			// Old tars mark a directory by a trailing slash on a regular
			// entry (typeflag NUL or '0'); GNU tar and bsdtar extract it
			// as one.
			if h.Size != 0 {
				return nil, false, fmt.Errorf("a regular-file entry whose name ends in / (a directory, by the old convention) carries %d bytes of data", h.Size)
			}
			f.Type = ext4w.TypeDir
			break
		}
		f.Type, f.Size = ext4w.TypeRegular, h.Size
		if h.Size < 0 {
			return nil, false, fmt.Errorf("negative size %d", h.Size)
		}
	case tar.TypeDir:
		f.Type = ext4w.TypeDir
	case tar.TypeSymlink:
		f.Type, f.Linkname = ext4w.TypeSymlink, h.Linkname
		if h.Linkname == "" {
			return nil, false, errors.New("symlink with an empty target")
		}
		if len(h.Linkname) > MaxSymlinkTarget {
			return nil, false, fmt.Errorf("symlink target is %d bytes, the limit is %d", len(h.Linkname), MaxSymlinkTarget)
		}
		if strings.IndexByte(h.Linkname, 0) >= 0 {
			return nil, false, errors.New("the symlink target holds a NUL byte")
		}
	case tar.TypeLink:
		target, err := Clean(h.Linkname)
		if err != nil {
			return nil, false, fmt.Errorf("hardlink target %q: %v", h.Linkname, err)
		}
		if target == "." {
			return nil, false, errors.New("hardlink to the root directory")
		}
		if name == "." {
			return nil, false, errors.New("a hardlink cannot replace the root directory")
		}
		e.Op, e.Target, e.File = OpLink, target, ext4w.File{}
		return e, false, nil
	case tar.TypeChar, tar.TypeBlock:
		f.Type = ext4w.TypeCharDev
		if h.Typeflag == tar.TypeBlock {
			f.Type = ext4w.TypeBlockDev
		}
		if h.Devmajor < 0 || h.Devminor < 0 || h.Devmajor > 1<<12-1 || h.Devminor > 1<<20-1 {
			return nil, false, fmt.Errorf("device %d:%d is beyond what ext4 holds (major < 4096, minor < 2^20)", h.Devmajor, h.Devminor)
		}
		f.Devmajor, f.Devminor = uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeFifo:
		f.Type = ext4w.TypeFifo
	default:
		return nil, false, fmt.Errorf("%s is not something a rootfs image can hold; refusing it rather than guessing", typeName(h.Typeflag))
	}
	if name == "." && f.Type != ext4w.TypeDir {
		return nil, false, fmt.Errorf("the root must be a directory, not a %v", f.Type)
	}
	return e, false, nil
}

// whiteout turns a ".wh.NAME" entry into the removal of NAME. aufs's
// ".wh..wh.*" metadata, the opaque marker among it, only concerns lower
// layers, which a flat tar does not have: it is dropped.
func (r *Reader) whiteout(e *Entry, base string) (*Entry, bool, error) {
	if r.layer {
		return layerWhiteout(e, base)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		r.warn("tar entry %q: whiteout metadata dropped (a flat tar has no lower layer); a docker export tar has none", e.Raw)
		return nil, true, nil
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" {
		return nil, false, errors.New(`a whiteout with an empty name (".wh." alone)`)
	}
	e.Op, e.Name = OpRemove, path.Join(path.Dir(e.Name), victim)
	r.warn("tar entry %q: whiteout: removing %q if an earlier entry made it; a docker export tar has none", e.Raw, e.Name)
	return e, false, nil
}

// whiteoutOpaque marks its directory opaque (OCI image-spec, layer.md).
const whiteoutOpaque = whiteoutMeta + ".opq"

// layerWhiteout turns an image layer's whiteout into what it asks of the
// layers below: ".wh..wh..opq" hides the lower entries of its directory,
// ".wh.NAME" removes NAME. Other aufs metadata (".wh..wh.plnk" and the
// like) is not part of the OCI format, and is dropped. Whiteouts are
// normal in layers: no warning.
func layerWhiteout(e *Entry, base string) (*Entry, bool, error) {
	switch {
	case base == whiteoutOpaque:
		e.Op, e.Name = OpOpaque, path.Dir(e.Name)
		return e, false, nil
	case strings.HasPrefix(base, whiteoutMeta):
		return nil, true, nil
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" {
		return nil, false, errors.New(`a whiteout with an empty name (".wh." alone)`)
	}
	e.Op, e.Name = OpRemove, path.Join(path.Dir(e.Name), victim)
	return e, false, nil
}

// globalHeader accepts a PAX global header ('g') that only carries a
// comment, as git archive writes. Records that would apply to every later
// entry are refused: the decoder does not apply them, and dropping them
// silently would build a different tree than tar -x.
func globalHeader(h *tar.Header) error {
	for k := range h.PAXRecords {
		if k != "comment" {
			return fmt.Errorf("a PAX global header with record %q, which would apply to every later entry, is not supported", k)
		}
	}
	return nil
}

// typeName names a typeflag ext4pack does not write.
func typeName(flag byte) string {
	known := map[byte]string{
		'A':                   "Solaris ACL",
		'D':                   "GNU incremental-dump directory",
		'E':                   "Solaris extended attributes",
		'I':                   "star inode metadata",
		'M':                   "GNU multi-volume continuation",
		'N':                   "old GNU long-name record",
		'V':                   "GNU volume label",
		'X':                   "Solaris extended header",
		tar.TypeXHeader:       "PAX header",
		tar.TypeGNULongName:   "GNU long-name record",
		tar.TypeGNULongLink:   "GNU long-link record",
		tar.TypeXGlobalHeader: "PAX global header",
	}
	if n, ok := known[flag]; ok {
		return fmt.Sprintf("entry type %q (%s)", flag, n)
	}
	return fmt.Sprintf("unknown entry type %q", flag)
}

// paxTime parses a PAX time: decimal seconds, optionally negative, with
// an optional fraction of up to nanoseconds (more digits are dropped).
func paxTime(s string) (time.Time, error) {
	secText, fracText, hasFrac := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secText, 10, 64)
	if err != nil || secText == "" || secText == "-" {
		return time.Time{}, errors.New("not a decimal time")
	}
	var nsec int64
	if hasFrac {
		if fracText == "" || strings.TrimLeft(fracText, "0123456789") != "" {
			return time.Time{}, errors.New("not a decimal time")
		}
		fracText = (fracText + "000000000")[:9]
		nsec, _ = strconv.ParseInt(fracText, 10, 64)
		if strings.HasPrefix(secText, "-") {
			nsec = -nsec
		}
	}
	return time.Unix(sec, nsec), nil
}
