package tarflat

import (
	"bytes"
	"io"

	"github.com/ext4pack/ext4pack/internal/tartest"
)

// join concatenates parts: blocks into a tar, tars into a stream.
func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// tarEntry, file, dir, symlink and hardlink are the names the inits
// branch's init_test.go builds its tars with: thin aliases of tartest's,
// until that branch is merged and switched. New tests use tartest.
type tarEntry = tartest.Entry

var (
	file     = tartest.File[[]byte]
	symlink  = tartest.Symlink
	hardlink = tartest.Hardlink
)

func dir(name string) tarEntry { return tartest.Dir(name, 0o755) }

// readAll reads every entry of the stream with its data and returns the
// entries, the data of each, the warnings and the first error.
func readAll(in []byte) (es []*Entry, data [][]byte, warns []string, err error) {
	r := NewReader(bytes.NewReader(in), WithWarn(func(m string) { warns = append(warns, m) }))
	defer r.Close()
	for {
		e, err := r.Next()
		if err == io.EOF {
			return es, data, warns, nil
		}
		if err != nil {
			return es, data, warns, err
		}
		d, err := io.ReadAll(r)
		if err != nil {
			return es, data, warns, err
		}
		es = append(es, e)
		data = append(data, d)
	}
}
