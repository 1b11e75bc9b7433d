package boottest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// tarComposer writes a tar made of another tar's entries, some of them
// changed, followed by entries of its own. It records what it wrote, so
// that an added file's missing parents are added as directories and an
// added file never lands under a symlink (ext4pack rejects an entry under a
// non-directory, and tar -x would follow the link).
type tarComposer struct {
	tw    *tar.Writer
	kinds map[string]byte // typeflag of every entry written, by clean name
	links map[string]string
	// small keeps the content of the regular files a variant may rewrite
	// (etc/inittab), by clean name.
	small map[string][]byte
	// mtime is given to every added entry: the newest mtime copied, so
	// that the output depends only on the input.
	mtime time.Time
}

func newTarComposer(w io.Writer) *tarComposer {
	return &tarComposer{
		tw:    tar.NewWriter(w),
		kinds: map[string]byte{"": tar.TypeDir},
		links: map[string]string{},
		small: map[string][]byte{},
	}
}

// content returns what the tar holds at name, following symlinks, if it is
// a small regular file copied from the base, and the name it has.
func (c *tarComposer) content(name string) ([]byte, string, bool) {
	for hops := 0; hops < 40; hops++ {
		dir, err := c.resolveDir(path.Dir(name))
		if err != nil {
			return nil, "", false
		}
		name = path.Join(dir, path.Base(name))
		target, isLink := c.links[name]
		if !isLink {
			b, ok := c.small[name]
			return b, name, ok
		}
		if strings.HasPrefix(target, "/") {
			name = cleanTarName(target)
		} else {
			name = cleanTarName(path.Join(path.Dir(name), target))
		}
	}
	return nil, "", false
}

// addEntry adds e, root-owned unless it says otherwise, under its parent as
// the tar's symlinks resolve it.
func (c *tarComposer) addEntry(e addEntry) error {
	dir, err := c.resolveDir(path.Dir(e.name))
	if err != nil {
		return err
	}
	name := path.Join(dir, path.Base(e.name))
	if dir == "" || dir == "." {
		name = path.Base(e.name)
	}
	if err := c.ensureParents(name); err != nil {
		return err
	}
	switch e.typ {
	case tar.TypeDir:
		if c.kinds[name] == tar.TypeDir {
			return nil
		}
		hdr := c.header(name+"/", tar.TypeDir, e.mode)
		hdr.Uid, hdr.Gid = e.uid, e.gid
		return c.write(hdr, nil)
	case tar.TypeSymlink:
		hdr := c.header(name, tar.TypeSymlink, 0o777)
		hdr.Linkname = e.link
		return c.write(hdr, nil)
	}
	hdr := c.header(name, tar.TypeReg, e.mode)
	hdr.Uid, hdr.Gid = e.uid, e.gid
	return c.write(hdr, e.data)
}

// cleanTarName drops a leading "./" or "/" and a trailing "/", as ext4pack
// does (SPEC.md, "Tar input rules"); the root itself becomes "".
func cleanTarName(name string) string {
	name = path.Clean("/" + name)
	return strings.TrimPrefix(name, "/")
}

// entryEdit changes a copied entry. It may change hdr's metadata and
// returns the new content of a regular file, or nil to keep the old one.
// It returns drop to leave the entry out.
type entryEdit func(name string, hdr *tar.Header) (content []byte, drop bool, err error)

// copyFrom copies every entry of r, a plain, gzip or zstd tar, through
// edit (which may be nil).
func (c *tarComposer) copyFrom(r io.Reader, edit entryEdit) error {
	tr, closeFn, err := openTarStream(r)
	if err != nil {
		return err
	}
	defer closeFn()
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := cleanTarName(hdr.Name)
		var content []byte
		if edit != nil {
			var drop bool
			if content, drop, err = edit(name, hdr); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if drop {
				continue
			}
		}
		if content != nil {
			if hdr.Typeflag != tar.TypeReg {
				return fmt.Errorf("%s: new content for an entry of type %q", name, hdr.Typeflag)
			}
			hdr.Size = int64(len(content))
		}
		if err := c.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch {
		case content != nil:
			_, err = c.tw.Write(content)
		case hdr.Typeflag == tar.TypeReg && hdr.Size <= 64<<10:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				c.small[name] = b
				_, err = c.tw.Write(b)
			}
		default:
			_, err = io.Copy(c.tw, tr)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		c.record(name, hdr)
		if hdr.ModTime.After(c.mtime) {
			c.mtime = hdr.ModTime
		}
	}
}

func (c *tarComposer) record(name string, hdr *tar.Header) {
	c.kinds[name] = hdr.Typeflag
	if hdr.Typeflag == tar.TypeSymlink {
		c.links[name] = hdr.Linkname
	} else {
		delete(c.links, name)
	}
}

// resolveDir returns dir with every symlinked directory among its leading
// components replaced by its target, so that lib/modules in a merged-/usr
// rootfs (lib -> usr/lib) becomes usr/lib/modules.
func (c *tarComposer) resolveDir(dir string) (string, error) {
	dir = cleanTarName(dir)
	parts := strings.Split(dir, "/")
	cur := ""
	hops := 0
	for i := 0; i < len(parts); i++ {
		next := path.Join(cur, parts[i])
		target, ok := c.links[next]
		if !ok {
			cur = next
			continue
		}
		// Linux's own limit on links followed in one lookup (MAXSYMLINKS).
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symlinks", dir)
		}
		if strings.HasPrefix(target, "/") {
			next = cleanTarName(target)
		} else {
			next = cleanTarName(path.Join(cur, target))
		}
		// Walk the target's components again: it may hold links itself.
		rest := append(strings.Split(next, "/"), parts[i+1:]...)
		parts, cur, i = rest, "", -1
	}
	return cur, nil
}

// header returns a root-owned header for an added entry.
func (c *tarComposer) header(name string, typ byte, mode int64) *tar.Header {
	return &tar.Header{
		Name:     name,
		Typeflag: typ,
		Mode:     mode,
		ModTime:  c.mtime,
		Format:   tar.FormatPAX,
	}
}

// ensureParents adds root:root 0755 directories for the missing parents of
// name, and fails if a parent is there but not a directory.
func (c *tarComposer) ensureParents(name string) error {
	parent := path.Dir(name)
	if parent == "." || parent == "/" {
		return nil
	}
	switch typ, ok := c.kinds[parent]; {
	case !ok:
		if err := c.ensureParents(parent); err != nil {
			return err
		}
		return c.write(c.header(parent+"/", tar.TypeDir, 0o755), nil)
	case typ != tar.TypeDir:
		return fmt.Errorf("%s: parent %s is not a directory (type %q)", name, parent, typ)
	}
	return nil
}

func (c *tarComposer) write(hdr *tar.Header, data []byte) error {
	if hdr.Typeflag == tar.TypeReg {
		hdr.Size = int64(len(data))
	}
	if err := c.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	if len(data) > 0 {
		if _, err := c.tw.Write(data); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	c.record(cleanTarName(hdr.Name), hdr)
	return nil
}

// addFile adds a root-owned regular file.
func (c *tarComposer) addFile(name string, mode int64, data []byte) error {
	if err := c.ensureParents(name); err != nil {
		return err
	}
	return c.write(c.header(name, tar.TypeReg, mode), data)
}

// addDir adds a directory, or leaves an existing one as it is: a second
// directory entry would change the first one's metadata.
func (c *tarComposer) addDir(name string, mode int64) error {
	if typ, ok := c.kinds[name]; ok {
		if typ == tar.TypeDir {
			return nil
		}
		return fmt.Errorf("%s: want a directory, the tar has type %q", name, typ)
	}
	if err := c.ensureParents(name); err != nil {
		return err
	}
	return c.write(c.header(name+"/", tar.TypeDir, mode), nil)
}

// Close writes the tar's end.
func (c *tarComposer) Close() error { return c.tw.Close() }

// Compression magic numbers (RFC 1952 for gzip, RFC 8878 for zstd), so a
// base tar may be given compressed, as ext4pack accepts it.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// openTarStream returns a tar reader over r, decompressing gzip or zstd.
func openTarStream(r io.Reader) (*tar.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return tar.NewReader(zr), func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return tar.NewReader(zr), zr.Close, nil
	}
	return tar.NewReader(br), func() {}, nil
}
