package ext4w_test

import (
	"crypto/sha256"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// layered builds an image from layers, each a function that writes one
// layer's entries, with NewLayer between them, and reads it back.
func layered(t *testing.T, layers ...func(w *ext4w.Writer) error) map[string]ext4w.CheckedEntry {
	t.Helper()
	img := build(t, func(w *ext4w.Writer) error {
		for _, l := range layers {
			if err := w.NewLayer(); err != nil {
				return err
			}
			if err := l(w); err != nil {
				return err
			}
		}
		return nil
	})
	oracle.Fsck(t, img)
	got, err := ext4w.ReadBack(img)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// names lists the paths of an image but lost+found, sorted.
func names(es map[string]ext4w.CheckedEntry) []string {
	var out []string
	for p := range es {
		if p != "lost+found" {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func dirAt(mode uint32, t time.Time) *ext4w.File {
	return &ext4w.File{Type: ext4w.TypeDir, Mode: mode, Mtime: t}
}

func file(w *ext4w.Writer, name, text string) error {
	return create(w, name, reg(0o644, len(text)), []byte(text))
}

func TestLayers(t *testing.T) {
	base := func(w *ext4w.Writer) error {
		return errors.Join(w.Create("d", dirAt(0o750, mtime)), file(w, "d/a", "lower a"),
			w.Create("d/sub", dirAt(0o700, mtime)), file(w, "d/sub/x", "lower x"), file(w, "f", "lower f"))
	}
	for _, tc := range []struct {
		name  string
		upper func(w *ext4w.Writer) error
		want  []string
	}{
		{"whiteout removes a lower file", func(w *ext4w.Writer) error { return w.Whiteout("f") },
			[]string{".", "d", "d/a", "d/sub", "d/sub/x"}},
		{"whiteout removes a lower directory and all under it", func(w *ext4w.Writer) error { return w.Whiteout("d") },
			[]string{".", "f"}},
		{"whiteout of a missing name does nothing", func(w *ext4w.Writer) error {
			return errors.Join(w.Whiteout("nope"), w.Whiteout("new/dir/x"))
		}, []string{".", "d", "d/a", "d/sub", "d/sub/x", "f"}},
		{"whiteout under a file does nothing", func(w *ext4w.Writer) error { return w.Whiteout("f/x") },
			[]string{".", "d", "d/a", "d/sub", "d/sub/x", "f"}},
		{"whiteout spares the layer's own file, after it", func(w *ext4w.Writer) error {
			return errors.Join(file(w, "f", "upper f"), w.Whiteout("f"))
		}, []string{".", "d", "d/a", "d/sub", "d/sub/x", "f"}},
		{"whiteout then the same name made again", func(w *ext4w.Writer) error {
			return errors.Join(w.Whiteout("d"), w.Create("d", dirAt(0o755, mtime)), file(w, "d/new", "n"))
		}, []string{".", "d", "d/new", "f"}},
		{"whiteout after the layer named the directory hides only the lower entries", func(w *ext4w.Writer) error {
			return errors.Join(file(w, "d/new", "n"), w.Whiteout("d"))
		}, []string{".", "d", "d/new", "f"}},
		{"a whiteout under a directory, then of the directory", func(w *ext4w.Writer) error {
			return errors.Join(w.Whiteout("d/sub/x"), w.Whiteout("d/sub"))
		}, []string{".", "d", "d/a", "f"}},
		{"opaque before the layer's entries", func(w *ext4w.Writer) error {
			return errors.Join(w.Opaque("d"), file(w, "d/new", "n"))
		}, []string{".", "d", "d/new", "f"}},
		{"opaque after the layer's entries", func(w *ext4w.Writer) error {
			return errors.Join(file(w, "d/new", "n"), file(w, "d/a", "upper a"), w.Opaque("d"))
		}, []string{".", "d", "d/a", "d/new", "f"}},
		{"opaque hides what is below a directory the layer names", func(w *ext4w.Writer) error {
			return errors.Join(file(w, "d/sub/y", "y"), w.Opaque("d"))
		}, []string{".", "d", "d/sub", "d/sub/y", "f"}},
		{"opaque of the root", func(w *ext4w.Writer) error {
			return errors.Join(file(w, "g", "g"), w.Opaque("."))
		}, []string{".", "g"}},
		{"opaque of a missing directory makes nothing", func(w *ext4w.Writer) error {
			return errors.Join(w.Opaque("nope"), w.Opaque("f"))
		}, []string{".", "d", "d/a", "d/sub", "d/sub/x", "f"}},
		{"a file replaces a lower directory", func(w *ext4w.Writer) error { return file(w, "d", "now a file") },
			[]string{".", "d", "f"}},
		{"a directory replaces a lower file", func(w *ext4w.Writer) error {
			return errors.Join(w.Create("f", dirAt(0o755, mtime)), file(w, "f/in", "in"))
		}, []string{".", "d", "d/a", "d/sub", "d/sub/x", "f", "f/in"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := layered(t, base, tc.upper)
			if n := names(got); !slices.Equal(n, tc.want) {
				t.Errorf("paths %q, want %q", n, tc.want)
			}
		})
	}
}

// TestLayerDirMetadata: a directory keeps its metadata, mtime included,
// when a layer only adds or removes its children, and takes the layer's
// when the layer has an entry of its own for it.
func TestLayerDirMetadata(t *testing.T) {
	later := mtime.Add(time.Hour)
	got := layered(t,
		func(w *ext4w.Writer) error {
			d := dirAt(0o750, mtime)
			d.Uid, d.Gid = 7, 8
			return errors.Join(w.Create("keep", d), file(w, "keep/old", "o"), w.Create("take", d))
		},
		func(w *ext4w.Writer) error {
			return errors.Join(file(w, "keep/new", "n"), w.Whiteout("keep/old"), w.Create("take", dirAt(0o711, later)),
				w.Opaque("keep"))
		})
	if k := got["keep"]; k.Perm != 0o750 || k.Uid != 7 || k.Gid != 8 || !k.Mtime.Equal(mtime) {
		t.Errorf("keep: %o %d:%d %v, want the lower layer's 0750 7:8 %v", k.Perm, k.Uid, k.Gid, k.Mtime, mtime)
	}
	if k := got["take"]; k.Perm != 0o711 || k.Uid != 0 || !k.Mtime.Equal(later) {
		t.Errorf("take: %o %d %v, want the upper layer's 0711 0 %v", k.Perm, k.Uid, k.Mtime, later)
	}
	if n := names(got); !slices.Equal(n, []string{".", "keep", "keep/new", "take"}) {
		t.Errorf("paths %q", n)
	}
}

// TestLayerHardlinks: a hardlink may name a lower layer's file. When that
// file has other names, the layer links to its own copy of it (as
// containerd copies the target up before linking), and the other names
// keep the lower file; the copy holds the same data, holes included.
func TestLayerHardlinks(t *testing.T) {
	data := append(content("big", 3*4096+100), make([]byte, 5*4096)...)
	data = append(data, content("tail", 777)...)
	slow := "/a/symlink/target/too/long/for/the/inode/so/it/takes/a/data/block"
	got := layered(t,
		func(w *ext4w.Writer) error {
			sym := &ext4w.File{Type: ext4w.TypeSymlink, Mode: 0o777, Linkname: slow, Mtime: mtime}
			return errors.Join(create(w, "a", reg(0o4755, len(data)), data), w.Link("a", "b"),
				file(w, "single", "one name"), w.Create("s", sym), w.Link("s", "s2"))
		},
		func(w *ext4w.Writer) error {
			return errors.Join(w.Link("a", "c"), w.Link("single", "single2"), w.Link("s", "s3"))
		},
		func(w *ext4w.Writer) error { return file(w, "single", "replaced") })
	sum := sha256.Sum256(data)
	for _, p := range []string{"a", "b", "c"} {
		if got[p].Data != sum || got[p].Perm != 0o4755 || got[p].Size != int64(len(data)) {
			t.Errorf("%s: not the lower file's data and mode: %+v", p, got[p])
		}
	}
	if got["a"].Ino != got["c"].Ino || got["a"].Links != 2 {
		t.Errorf("a and c: inodes %d %d, links %d: want one inode of 2 links", got["a"].Ino, got["c"].Ino, got["a"].Links)
	}
	if got["b"].Ino == got["a"].Ino || got["b"].Links != 1 {
		t.Errorf("b: inode %d links %d: want the lower inode, alone", got["b"].Ino, got["b"].Links)
	}
	if got["s3"].Ino != got["s"].Ino || got["s2"].Ino == got["s"].Ino || got["s3"].Linkname != slow || got["s2"].Linkname != slow {
		t.Errorf("symlinks: %+v %+v %+v", got["s"], got["s2"], got["s3"])
	}
	// A file with one name needs no copy; the later layer's replacement
	// of its first name leaves the link with the old data.
	if got["single2"].Data != sha256.Sum256([]byte("one name")) || got["single"].Data != sha256.Sum256([]byte("replaced")) {
		t.Errorf("single2 should keep the data it was linked to")
	}
}
