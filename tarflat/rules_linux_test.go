package tarflat

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// buildImage runs the tar at tarPath through Copy into a new image and
// returns the image's path.
func buildImage(t *testing.T, tarPath string) string {
	t.Helper()
	in, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	img := filepath.Join(t.TempDir(), "rootfs.ext4")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ext4w.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(in)
	defer r.Close()
	if _, err := Copy(w, r); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// judge runs the oracle's judges on an image made from tarPath: e2fsck
// must be clean and the kernel must read back what SPEC's rules say.
func judge(t *testing.T, tarPath, img string) {
	t.Helper()
	oracle.Fsck(t, img)
	newest, err := oracle.NewestMtime(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	oracle.CompareMount(t, tarPath, img, oracle.CreatedMtime(newest))
}

// TestRules checks each of SPEC's "Tar input rules" that a valid tar can
// exercise against the oracle's independent reading of them.
func TestRules(t *testing.T) {
	t1 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	t2 := time.Date(2022, 2, 2, 2, 2, 2, 222, time.UTC)
	for _, tc := range []struct {
		name  string
		build func(b *oracle.TarBuilder)
	}{
		{"later entry wins", func(b *oracle.TarBuilder) {
			b.File("etc/f", 0o600, []byte("first")).Owner(1, 1)
			b.File("etc/f", 0o644, []byte("second")).Owner(2, 2)
			b.File("etc/was-link", 0o644, []byte("x"))
			b.Symlink("etc/was-link", "target")
			b.Symlink("etc/was-file", "target")
			b.File("etc/was-file", 0o644, []byte("now a file"))
			b.File("etc/becomes-dir", 0o644, []byte("x"))
			b.Dir("etc/becomes-dir", 0o700)
			b.File("etc/becomes-dir/child", 0o644, []byte("child"))
			b.Dir("var/lost", 0o755)
			b.File("var/lost/child", 0o644, []byte("dropped with its directory"))
			b.Fifo("var/lost", 0o600)
			b.Char("dev/x", 0o600, 1, 1)
			b.Block("dev/x", 0o600, 8, 1)
		}},
		{"directory over directory keeps its children", func(b *oracle.TarBuilder) {
			b.Dir("opt", 0o755)
			b.File("opt/keep", 0o644, []byte("kept"))
			b.Dir("opt/sub", 0o755)
			b.Dir("opt/", 0o700).Owner(5, 6).Time(t2).Xattr("user.new", "metadata")
			b.Dir("./", 0o750).Time(t1)
		}},
		{"out of order and missing parents", func(b *oracle.TarBuilder) {
			b.File("usr/share/doc/pkg/copyright", 0o644, []byte("c"))
			b.File("a/b/c/d/e/f/g", 0o644, []byte("deep"))
			b.Dir("usr/share", 0o700).Owner(3, 3).Time(t1)
			b.Dir("usr", 0o755).Time(t2)
		}},
		{"names cleaned", func(b *oracle.TarBuilder) {
			b.Dir("./etc/", 0o755)
			b.File("./etc/a", 0o644, []byte("a"))
			b.File("etc/b", 0o644, []byte("b"))
			b.File("/etc/c", 0o644, []byte("c"))
			b.File("etc//d", 0o644, []byte("d"))
			b.File("./etc/./e", 0o644, []byte("e"))
			b.File("etc/x/../f", 0o644, []byte("f"))
			b.Dir("etc", 0o711)
			b.Dir(".", 0o755)
			b.Hardlink("/etc/g", "./etc/a")
		}},
		{"hardlinks", func(b *oracle.TarBuilder) {
			b.File("bin/bash", 0o755, []byte("bash")).Owner(0, 0)
			b.Hardlink("bin/sh", "bin/bash")
			b.Hardlink("usr/bin/sh", "bin/sh") // a link to a link: the same inode
			b.File("bin/bash", 0o755, []byte("new bash, a new inode"))
			b.File("etc/a", 0o644, []byte("a"))
			b.Hardlink("etc/b", "etc/a")
			b.File("etc/b", 0o644, []byte("b replaces the link, not a"))
			b.Hardlink("etc/self", "etc/a")
			b.Hardlink("etc/self", "etc/self")
		}},
		{"whiteouts", func(b *oracle.TarBuilder) {
			b.File("etc/gone", 0o644, []byte("gone"))
			b.File("etc/.wh.gone", 0o644, nil)
			b.File("var/cache/a/b", 0o644, []byte("gone with var/cache"))
			b.File("var/.wh.cache", 0o644, nil)
			b.File("etc/.wh.never-existed", 0o644, nil)
			b.File("etc/file", 0o644, []byte("x"))
			b.File("etc/file/.wh.under-a-file", 0o644, nil)
			b.File("opt/.wh..wh..opq", 0o644, nil)
			b.File("srv/back", 0o644, []byte("old"))
			b.File("srv/.wh.back", 0o644, nil)
			b.File("srv/back", 0o644, []byte("made again after its whiteout"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := oracle.NewTar(t)
			tc.build(b)
			tarPath := b.Write()
			judge(t, tarPath, buildImage(t, tarPath))
		})
	}
}

// TestReplacedDataGone checks SPEC "Output files": the data of a replaced
// or removed entry does not survive in the image, while data one name
// still holds does.
func TestReplacedDataGone(t *testing.T) {
	marker := func(s string) []byte { return bytes.Repeat([]byte(s), 3*4096/len(s)+1) }
	b := oracle.NewTar(t)
	b.File("replaced", 0o644, marker("REPLACED-MARKER-"))
	b.File("replaced", 0o644, []byte("small"))
	b.File("dir/removed", 0o644, marker("REMOVED-MARKER--"))
	b.File(".wh.dir", 0o644, nil)
	b.File("linked", 0o644, marker("STILL-LINKED----"))
	b.Hardlink("other-name", "linked")
	b.File("linked", 0o644, []byte("the other name keeps the data"))
	b.File("became-dir", 0o644, marker("BECAME-DIR------"))
	b.Dir("became-dir", 0o755)
	tarPath := b.Write()
	img := buildImage(t, tarPath)
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"REPLACED-MARKER-", "REMOVED-MARKER--", "BECAME-DIR------"} {
		if bytes.Contains(raw, []byte(m)) {
			t.Errorf("%s survives in the image", m)
		}
	}
	if !bytes.Contains(raw, []byte("STILL-LINKED----")) {
		t.Error("data a hardlink still holds is gone")
	}
	judge(t, tarPath, img)
}

// TestTrailingSlashRegular checks the old convention that a regular-file
// entry whose name ends in "/" is a directory, as GNU tar and bsdtar
// extract it. The oracle reads such an entry as a file (and then refuses
// the entry under it), so the image is compared with the same tree
// written with proper directory entries.
func TestTrailingSlashRegular(t *testing.T) {
	raw := join(
		tartest.Raw{Name: "./", Typeflag: '5', Mode: 0o755, Mtime: 1700000000}.Block(),
		tartest.Raw{Name: "d/", Typeflag: '0', Mode: 0o750, Mtime: 1700000000}.Block(),
		tartest.Raw{Name: "d/f", Typeflag: '0', Size: 2, Mtime: 1700000000}.Block(), tartest.Pad("hi"),
		tartest.End(),
	)
	tarPath := filepath.Join(t.TempDir(), "slash.tar")
	if err := os.WriteFile(tarPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	b := oracle.NewTar(t)
	mt := time.Unix(1700000000, 0)
	b.Dir("./", 0o755).Time(mt)
	b.Dir("d", 0o750).Time(mt)
	b.File("d/f", 0o644, []byte("hi")).Time(mt)
	img := buildImage(t, tarPath)
	judge(t, b.Write(), img)
}

// TestEveryType runs the oracle's every-type tar through Copy.
func TestEveryType(t *testing.T) {
	tarPath := oracle.EveryTypeTar(t)
	judge(t, tarPath, buildImage(t, tarPath))
}

// TestContiguousFileImage checks a typeflag '7' entry end to end: the
// kernel reads it back from the image as the regular file the oracle
// expects (archive/tar, GNU tar and bsdtar extract it as one).
func TestContiguousFileImage(t *testing.T) {
	raw := join(
		tartest.Raw{Name: "./", Typeflag: '5', Mode: 0o755, Mtime: 1700000000}.Block(),
		tartest.Raw{Name: "bin/", Typeflag: '5', Mode: 0o755, Mtime: 1700000000}.Block(),
		tartest.Raw{Name: "bin/cont", Typeflag: '7', Size: 5, Mode: 0o4755, Mtime: 1700000000}.Block(), tartest.Pad("hello"),
		tartest.End(),
	)
	tarPath := filepath.Join(t.TempDir(), "contiguous.tar")
	if err := os.WriteFile(tarPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	judge(t, tarPath, buildImage(t, tarPath))
}
