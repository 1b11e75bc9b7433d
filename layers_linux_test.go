package ext4pack_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack"
	"github.com/ext4pack/ext4pack/internal/ocitest"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

var (
	t0 = time.Date(2023, 1, 2, 3, 4, 5, 123456789, time.UTC)
	t1 = t0.Add(24 * time.Hour)
	t2 = t1.Add(24 * time.Hour)
)

// layerCases are the layers of TestLayersMatchOverlay: every whiteout
// case of the OCI image-spec, and the corners overlayfs and containerd
// settle: an opaque marker before and after its directory's entries, a
// directory replaced by a file and a file by a directory, a hardlink to
// a lower file whose name a later layer replaces, a whiteout of nothing,
// setuid files and capabilities in an upper layer, a root named by two
// layers and kept by the third.
func layerCases(t *testing.T) [][]byte {
	base := oracle.NewTar(t)
	base.Dir("./", 0o751).Owner(0, 5).Time(t0) // the root, named
	for _, d := range []string{"etc", "usr", "usr/bin", "d", "opqA", "opqA/lowdir", "opqB", "x", "dir2file", "hl", "dev", "keepmeta", "wd"} {
		base.Dir(d, 0o755).Time(t0)
	}
	base.Dir("keepmeta", 0o750).Owner(7, 8).Time(t0)
	base.File("etc/passwd", 0o644, []byte("root:x:0:0::/root:/bin/sh\n")).Time(t0)
	base.File("usr/bin/tool", 0o755, oracle.Content("tool", 9000)).Time(t0)
	base.File("d/keep", 0o644, []byte("keep")).Time(t0)
	base.File("d/gone", 0o644, []byte("gone")).Time(t0)
	base.File("opqA/low1", 0o644, []byte("low1")).Time(t0)
	base.File("opqA/lowdir/f", 0o644, []byte("f")).Time(t0)
	base.File("opqB/low", 0o644, []byte("low")).Time(t0)
	base.File("x/file2dir", 0o644, []byte("a file, for now")).Time(t0)
	base.File("dir2file/child", 0o644, []byte("child")).Time(t0)
	base.File("hl/a", 0o4755, oracle.Content("hardlinked", 20000)).Owner(0, 0).Time(t0)
	base.Hardlink("hl/b", "hl/a")
	base.File("hl/single", 0o644, []byte("single")).Time(t0)
	base.File("keepmeta/old", 0o644, []byte("old")).Time(t0)
	base.Char("dev/null", 0o666, 1, 3).Time(t0)
	base.Fifo("dev/fifo", 0o600).Time(t0)
	base.Symlink("usr/bin/sh", "tool").Time(t0)
	base.File("wd/x", 0o644, []byte("x")).Time(t0)
	base.File("wd/y", 0o644, []byte("y")).Time(t0)

	mid := oracle.NewTar(t)
	mid.Dir(".", 0o755).Owner(0, 6).Time(t1).Xattr("user.root", "mid") // named again; top keeps it
	mid.File("d/.wh.gone", 0o644, nil).Time(t1)
	mid.File("opqA/.wh..wh..opq", 0o644, nil).Time(t1) // the marker first
	mid.File("opqA/new", 0o644, []byte("new A")).Time(t1)
	mid.Dir("opqB", 0o711).Time(t1)
	mid.File("opqB/new", 0o644, []byte("new B")).Time(t1)
	mid.File("opqB/.wh..wh..opq", 0o644, nil).Time(t1) // the marker last
	mid.File("dir2file", 0o600, []byte("now a file")).Time(t1)
	mid.File("dir2file/.wh.child", 0o644, nil).Time(t1) // umoci 0.4.7 writes this
	mid.Dir("x/file2dir", 0o700).Time(t1)
	mid.File("x/file2dir/in", 0o644, []byte("in")).Time(t1)
	mid.Hardlink("hl/c", "hl/a").Time(t1)
	mid.Hardlink("hl/single2", "hl/single").Time(t1)
	mid.File(".wh.never-was", 0o644, nil).Time(t1)
	mid.File("usr/bin/sudoish", 0o4755, []byte("#!/bin/sh\n")).Time(t1).
		Xattr("security.capability", "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	mid.File("usr/bin/tool", 0o2755, oracle.Content("tool v2", 5000)).Owner(0, 50).Time(t1)
	mid.File("keepmeta/new", 0o644, []byte("new")).Time(t1)
	mid.File("keepmeta/.wh.old", 0o644, nil).Time(t1)
	mid.File("wd/.wh.x", 0o644, nil).Time(t1) // a whiteout under a directory,
	mid.File(".wh.wd", 0o644, nil).Time(t1)   // then of the directory

	top := oracle.NewTar(t)
	top.File("hl/a", 0o644, []byte("replaced")).Time(t2)
	top.Dir("etc", 0o700).Owner(3, 4).Time(t2)
	top.File("d/added", 0o644, []byte("added")).Time(t2)
	top.File("hl/single", 0o644, []byte("single replaced")).Time(t2)
	return [][]byte{base.Bytes(), mid.Bytes(), top.Bytes()}
}

// TestLayersMatchOverlay builds an image from a three-layer OCI layout
// (gzip, zstd and plain layers) and compares the kernel's mount of it,
// entry by entry, with the kernel's overlayfs over the layers extracted
// as containerd extracts them.
func TestLayersMatchOverlay(t *testing.T) {
	tars := layerCases(t)
	lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
	lay.Tag("v1", lay.Image(ocitest.Image{Layers: []ocitest.Layer{
		{Tar: tars[0], Compression: "gzip"}, {Tar: tars[1], Compression: "zstd"}, {Tar: tars[2]},
	}}))
	lay.Close()

	img := filepath.Join(t.TempDir(), "rootfs.ext4")
	if _, err := ext4pack.BuildImage(context.Background(), ext4pack.Source{Image: "oci:" + lay.Dir + ":v1"}, img, ext4pack.Options{}); err != nil {
		t.Fatal(err)
	}
	oracle.Fsck(t, img)
	ref := ocitest.Reference(t, tars...)
	oracle.CompareMountWithDir(t, ref, img)
	// The reference itself did what the cases are about, so that a
	// judge and a writer wrong in the same way cannot pass together.
	for p, want := range map[string]bool{
		"d/gone": false, "d/keep": true, "d/added": true, "opqA/low1": false, "opqA/lowdir": false, "opqA/new": true,
		"opqB/low": false, "opqB/new": true, "dir2file/child": false, "x/file2dir/in": true, "never-was": false,
		"keepmeta/old": false, "keepmeta/new": true, "wd": false,
	} {
		if _, err := os.Lstat(filepath.Join(ref, p)); (err == nil) != want {
			t.Errorf("reference: %s exists: %v, want %v", p, err == nil, want)
		}
	}
	ino := func(p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(ref, p), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	if ino("hl/b") == ino("hl/c") || ino("hl/c") == ino("hl/a") || ino("hl/single2") == ino("hl/single") {
		t.Errorf("reference: hl/c should be a copy-up of hl/a, apart from hl/b, and hl/a replaced")
	}
}

// TestLayersUnnamedRoot: layers that never name the root give the image
// the root ext4pack makes itself, root:root 0755 with the newest mtime of
// any header (a whiteout's here), and the overlay reference agrees.
func TestLayersUnnamedRoot(t *testing.T) {
	lower := oracle.NewTar(t)
	lower.Dir("etc", 0o755).Owner(0, 0).Time(t0)
	lower.File("etc/a", 0o644, []byte("a")).Time(t0)
	upper := oracle.NewTar(t)
	upper.File("etc/b", 0o600, []byte("b")).Owner(3, 4).Time(t1)
	upper.File("etc/.wh.a", 0o644, nil).Time(t2)
	tars := [][]byte{lower.Bytes(), upper.Bytes()}
	lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
	lay.Tag("v1", lay.Image(ocitest.Image{Layers: []ocitest.Layer{{Tar: tars[0], Compression: "gzip"}, {Tar: tars[1]}}}))
	lay.Close()
	img, _ := buildFrom(t, "oci:"+lay.Dir+":v1", ext4pack.Options{})
	ref := ocitest.Reference(t, tars...)
	oracle.CompareMountWithDir(t, ref, img)
	var st syscall.Stat_t
	if err := syscall.Lstat(ref, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o755 || st.Uid != 0 || st.Gid != 0 || !time.Unix(st.Mtim.Unix()).Equal(t2) {
		t.Errorf("reference root: mode %o, %d:%d, mtime %v; want 0755, 0:0, %v", st.Mode&0o7777, st.Uid, st.Gid, time.Unix(st.Mtim.Unix()).UTC(), t2)
	}
}

// TestOverlayJudgeSeesDifferences is the judge's negative control: an
// image of the first two layers, or of the first and the last, is not the
// overlay of all three, and the comparison says where.
func TestOverlayJudgeSeesDifferences(t *testing.T) {
	tars := layerCases(t)
	oracle.RequireRoot(t, "mounting images")
	ref := ocitest.Reference(t, tars...)
	for _, c := range []struct {
		name   string
		layers []int
		want   []string // paths the judge must report
	}{
		{"the first two", []int{0, 1}, []string{"/hl/a", "/etc", "/d/added", "/hl/single"}},
		// The root is the base layer's, not the middle layer's.
		{"the first and the last", []int{0, 2}, []string{"/", "/d/gone", "/opqA/low1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
			var ls []ocitest.Layer
			for _, i := range c.layers {
				ls = append(ls, ocitest.Layer{Tar: tars[i]})
			}
			lay.Tag("part", lay.Image(ocitest.Image{Layers: ls}))
			lay.Close()
			img := filepath.Join(t.TempDir(), "rootfs.ext4")
			if _, err := ext4pack.BuildImage(context.Background(), ext4pack.Source{Image: "oci:" + lay.Dir}, img, ext4pack.Options{}); err != nil {
				t.Fatal(err)
			}
			diffs, err := oracle.MountDiffDir(ref, img)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, d := range diffs {
				seen[d.Path] = true
			}
			for _, p := range c.want {
				if !seen[p] {
					t.Errorf("the judge did not see that %s differs (diffs: %v)", p, diffs)
				}
			}
		})
	}
}

// buildFrom builds an image from ref with the library and has e2fsck
// judge it.
func buildFrom(t *testing.T, ref string, o ext4pack.Options) (string, *ext4pack.Built) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "rootfs.ext4")
	b, err := ext4pack.BuildImage(context.Background(), ext4pack.Source{Image: ref}, img, o)
	if err != nil {
		t.Fatal(err)
	}
	oracle.Fsck(t, img)
	return img, b
}

// TestSourcesMatchOverlay reads the same three layers from every source,
// each made by a real tool: skopeo's OCI archive, docker-archive and
// zstd re-compression, and distribution's registry, by tag, by digest and
// as a bare reference. Each image matches the overlay reference.
func TestSourcesMatchOverlay(t *testing.T) {
	tars := layerCases(t)
	work := t.TempDir()
	lay := ocitest.NewLayout(t, filepath.Join(work, "layout"))
	manifest := lay.Image(ocitest.Image{Layers: []ocitest.Layer{
		{Tar: tars[0], Compression: "gzip"}, {Tar: tars[1], Compression: "gzip"}, {Tar: tars[2], Compression: "gzip"},
	}})
	lay.Tag("v1", manifest)
	lay.Close()
	ref := ocitest.Reference(t, tars...)

	src := "oci:" + lay.Dir + ":v1"
	ocitest.Skopeo(t, "copy", src, "oci-archive:"+filepath.Join(work, "img.oci.tar")+":v1")
	ocitest.Skopeo(t, "copy", src, "docker-archive:"+filepath.Join(work, "img.docker.tar")+":test/img:v1")
	ocitest.Skopeo(t, "copy", "--dest-compress-format", "zstd", src, "oci:"+filepath.Join(work, "zstd")+":v1")
	reg := ocitest.StartRegistry(t, "", "")
	pushed := reg.Push(t, src, "test/img:v1")

	for _, tc := range []struct{ name, ref, digest string }{
		{"oci", src, manifest.Digest},
		{"oci zstd (skopeo)", "oci:" + filepath.Join(work, "zstd") + ":v1", "other"},
		{"oci-archive", "oci-archive:" + filepath.Join(work, "img.oci.tar") + ":v1", manifest.Digest},
		// skopeo writes the legacy docker save format: no manifest.
		{"docker-archive", "docker-archive:" + filepath.Join(work, "img.docker.tar"), ""},
		{"docker-archive by ref", "docker-archive:" + filepath.Join(work, "img.docker.tar") + ":test/img:v1", ""},
		{"registry", pushed, manifest.Digest},
		{"registry, bare", reg.Host + "/test/img:v1", manifest.Digest},
		{"registry, digest", reg.Host + "/test/img@" + manifest.Digest, manifest.Digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, b := buildFrom(t, tc.ref, ext4pack.Options{})
			oracle.CompareMountWithDir(t, ref, img)
			if b.Image == nil || b.Image.Platform != "linux/amd64" || b.Image.Layers != 3 {
				t.Fatalf("image source %+v", b.Image)
			}
			if d := b.Image.Digest; d != tc.digest && (tc.digest != "other" || d == "" || d == manifest.Digest) {
				t.Errorf("manifest digest %q, want %q", d, tc.digest)
			}
		})
	}
}

// TestUmociLayersMatchOverlay judges images that umoci made, layer by
// layer, from changes to a real directory tree: umoci writes the
// whiteouts its own way (a directory replaced by a file keeps a whiteout
// under the file, SPEC "Image sources").
func TestUmociLayersMatchOverlay(t *testing.T) {
	oracle.RequireRoot(t, "umoci unpacking owners and devices")
	work := t.TempDir()
	lay := filepath.Join(work, "layout")
	ocitest.Umoci(t, "init", "--layout", lay)
	ocitest.Umoci(t, "new", "--image", lay+":t")
	step := 0
	change := func(fn func(root string)) {
		t.Helper()
		step++
		bundle := filepath.Join(work, fmt.Sprintf("bundle%d", step))
		ocitest.Umoci(t, "unpack", "--image", lay+":t", bundle)
		fn(filepath.Join(bundle, "rootfs"))
		ocitest.Umoci(t, "repack", "--image", lay+":t", bundle)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string, mode os.FileMode) {
		t.Helper()
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, []byte(s), mode))
		must(os.Chmod(p, mode))
	}
	change(func(r string) {
		write(r+"/etc/os-release", "ID=umocitest\n", 0o644)
		write(r+"/usr/bin/tool", "#!/bin/sh\necho tool\n", 0o755)
		write(r+"/usr/bin/su", "su", 0o4755)
		write(r+"/dir2file/child", "child", 0o644)
		write(r+"/file2dir", "file", 0o644)
		write(r+"/gone/deep/f", "deep", 0o644)
		write(r+"/hl/a", "linked", 0o644)
		must(os.Link(r+"/hl/a", r+"/hl/b"))
		must(os.Symlink("tool", r+"/usr/bin/t"))
		must(syscall.Mkfifo(r+"/fifo", 0o600))
		must(syscall.Mknod(r+"/null", syscall.S_IFCHR|0o666, 1<<8|3))
		must(os.Chown(r+"/etc/os-release", 12, 34))
		must(syscall.Setxattr(r+"/usr/bin/tool", "user.note", []byte("hello"), 0))
	})
	change(func(r string) {
		must(os.RemoveAll(r + "/gone"))
		must(os.RemoveAll(r + "/dir2file"))
		write(r+"/dir2file", "now a file", 0o600)
		must(os.Remove(r + "/file2dir"))
		write(r+"/file2dir/in", "in", 0o644)
		must(os.Link(r+"/hl/a", r+"/hl/c"))
		must(os.Chmod(r+"/usr/bin/tool", 0o2755))
		write(r+"/usr/sbin/capped", "cap", 0o755)
		must(syscall.Setxattr(r+"/usr/sbin/capped", "security.capability",
			[]byte("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), 0))
	})
	change(func(r string) {
		must(os.Remove(r + "/hl/a"))
		write(r+"/hl/a", "replaced", 0o644)
	})
	img, b := buildFrom(t, "oci:"+lay+":t", ext4pack.Options{})
	oracle.CompareMountWithDir(t, ocitest.Reference(t, ocitest.LayerTars(t, lay, "t")...), img)
	if b.Image.Layers != 3 {
		t.Errorf("%d layers, want 3", b.Image.Layers)
	}
}
