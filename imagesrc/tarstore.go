package imagesrc

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// tarStore reads the members of an uncompressed tar (an OCI archive, a
// docker save archive) in place: one pass over the headers finds where
// each member's data lies, and a member is then a section of the file.
// Nothing is extracted.
type tarStore struct {
	f       *os.File
	members map[string]tarMember
}

type tarMember struct {
	off, size int64
	link      string // a symlink's target, resolved at open
}

// maxMembers bounds the index a hostile archive can make us build.
const maxMembers = 1 << 20

func openTarStore(name string) (*tarStore, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file (the archive must be seekable)", name)
	}
	s := &tarStore{f: f, members: map[string]tarMember{}}
	if err := s.index(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// index reads every header. archive/tar reads a header's blocks and no
// more, and skips data by seeking, so after Next the file's offset is
// where the member's data starts.
func (s *tarStore) index() error {
	tr := tar.NewReader(s.f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(s.members) == 0 {
				return fmt.Errorf("not a tar archive: %w", err)
			}
			return err
		}
		if len(s.members) >= maxMembers {
			return fmt.Errorf("more than %d members", maxMembers)
		}
		name := cleanMember(h.Name)
		switch h.Typeflag {
		case tar.TypeReg:
			off, err := s.f.Seek(0, io.SeekCurrent)
			if err != nil {
				return err
			}
			s.members[name] = tarMember{off: off, size: h.Size}
		case tar.TypeSymlink, tar.TypeLink:
			// docker save links a layer that two images share.
			target := h.Linkname
			if h.Typeflag == tar.TypeSymlink && !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			s.members[name] = tarMember{link: cleanMember(target)}
		}
	}
	if len(s.members) == 0 {
		return errors.New("the archive is empty")
	}
	return nil
}

func cleanMember(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (s *tarStore) open(name string) (io.ReadCloser, int64, error) {
	name = cleanMember(name)
	for hops := 0; ; hops++ {
		m, ok := s.members[name]
		if !ok {
			return nil, 0, fmt.Errorf("%s: %w in the archive", name, fs.ErrNotExist)
		}
		if m.link == "" {
			return io.NopCloser(io.NewSectionReader(s.f, m.off, m.size)), m.size, nil
		}
		if hops == 8 {
			return nil, 0, fmt.Errorf("%s: too many links", name)
		}
		name = m.link
	}
}

func (s *tarStore) close() error { return s.f.Close() }
