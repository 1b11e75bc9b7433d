package bundle

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The oracle tests restore bundles with the tools users have: GNU tar
// (which runs zstd), bsdtar and Python's tarfile, and decompress them with
// stock zstd. Outside CI they skip when a tool is missing; in CI (CI set)
// a missing tool fails them. Debian packages: tar, zstd, libarchive-tools,
// python3.

// needTool returns the path of the program name, which the Debian package
// pkg provides.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "" {
		t.Skipf("%s not found (apt-get install %s); skipped outside CI, fails in CI", name, pkg)
	}
	t.Fatalf("%s not found (apt-get install %s): %v", name, pkg, err)
	return ""
}

// needGNUTar returns the path of GNU tar, which --sparse restores need.
func needGNUTar(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"tar", "gtar"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "--version").Output()
		if err == nil && bytes.Contains(out, []byte("GNU tar")) {
			return path
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("GNU tar not found (apt-get install tar); skipped outside CI, fails in CI")
	}
	t.Fatal("GNU tar not found (apt-get install tar)")
	return ""
}

func run(t *testing.T, dir string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Errorf("%s %s warned:\n%s", name, strings.Join(args, " "), stderr.Bytes())
	}
	return out
}

// checkRestored compares the files a tool extracted into dir with the
// bundle's members.
func checkRestored(t *testing.T, tool, dir string, manifest, content []byte, sparse bool) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ManifestName+" "+RootfsName {
		t.Fatalf("%s extracted %v", tool, names)
	}
	if got, err := os.ReadFile(filepath.Join(dir, ManifestName)); err != nil || !bytes.Equal(got, manifest) {
		t.Errorf("%s: manifest.json %q (%v), want %q", tool, got, err, manifest)
	}
	rootfs := filepath.Join(dir, RootfsName)
	got, err := os.ReadFile(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("%s restored %d bytes that differ from the image's %d", tool, len(got), len(content))
	}
	fi, err := os.Stat(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(testTime) {
		t.Errorf("%s: rootfs.ext4 mode %v mtime %v", tool, fi.Mode(), fi.ModTime())
	}
	if sparse {
		checkSparse(t, rootfs, content)
	}
}

func TestOracles(t *testing.T) {
	dir := t.TempDir()
	sparse := holesSupported(t, dir)
	if !sparse {
		t.Logf("%s stores no holes: sparseness is not checked", dir)
	}
	for _, c := range imageCases() {
		t.Run(c.name, func(t *testing.T) {
			img, content := makeImage(t, dir, c)
			// Small frames, so that every tool reads several.
			path, _ := writeBundle(t, dir, img, WithFrameSize(MinFrameSize))
			tarball := decompress(t, path)
			ms := readMembers(t, tarball)
			manifest := ms[0].data

			t.Run("zstd", func(t *testing.T) {
				zstdBin := needTool(t, "zstd", "zstd")
				run(t, dir, zstdBin, "-q", "-t", path)
				if out := run(t, dir, zstdBin, "-q", "-d", "-c", path); !bytes.Equal(out, tarball) {
					t.Errorf("zstd -d gives %d bytes, klauspost %d, and they differ", len(out), len(tarball))
				}
			})
			t.Run("gnu-tar", func(t *testing.T) {
				tarBin := needGNUTar(t)
				needTool(t, "zstd", "zstd") // tar --zstd runs it
				out := string(run(t, dir, tarBin, "--zstd", "-tvf", path))
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if len(lines) != 2 || !strings.HasSuffix(lines[0], " "+ManifestName) || !strings.HasSuffix(lines[1], " "+RootfsName) ||
					!strings.HasPrefix(lines[1], "-rw-r--r-- root/root ") || !strings.Contains(lines[1], " "+strconv.FormatInt(c.size, 10)+" ") {
					t.Errorf("tar -tv lists:\n%s", out)
				}
				x := t.TempDir()
				run(t, x, tarBin, "--zstd", "-xf", path)
				checkRestored(t, "GNU tar", x, manifest, content, sparse)
			})
			t.Run("bsdtar", func(t *testing.T) {
				bsdtar := needTool(t, "bsdtar", "libarchive-tools")
				out := string(run(t, dir, bsdtar, "-tf", path))
				if out != ManifestName+"\n"+RootfsName+"\n" {
					t.Errorf("bsdtar -t lists:\n%s", out)
				}
				x := t.TempDir()
				run(t, x, bsdtar, "-xf", path)
				checkRestored(t, "bsdtar", x, manifest, content, sparse)
			})
			t.Run("python-tarfile", func(t *testing.T) {
				python := needTool(t, "python3", "python3")
				// Python before 3.14 has no zstd: give it the tar.
				plain := filepath.Join(t.TempDir(), "bundle.tar")
				if err := os.WriteFile(plain, tarball, 0o644); err != nil {
					t.Fatal(err)
				}
				x := t.TempDir()
				out := string(run(t, dir, python, "-c", pythonExtract, plain, x))
				if out != ManifestName+" None\n"+RootfsName+" sparse\n" {
					t.Errorf("python tarfile read:\n%s", out)
				}
				checkRestored(t, "python tarfile", x, manifest, content, sparse)
			})
		})
	}
}

// pythonExtract lists the members of the tar argv[1], saying which are
// sparse, and extracts them into argv[2].
const pythonExtract = `
import sys, tarfile
with tarfile.open(sys.argv[1]) as tf:
    for m in tf.getmembers():
        print(m.name, "None" if m.sparse is None else "sparse")
    kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    tf.extractall(sys.argv[2], **kw)
`

// TestOraclesLargeMember lists a member over 8 GiB with every tool. The
// tar is a sparse file whose data is a hole, so nothing is compressed
// and little is written.
func TestOraclesLargeMember(t *testing.T) {
	dir := t.TempDir()
	const size = 9<<30 + 12345
	img, err := os.Create(filepath.Join(dir, "large.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if err := img.Truncate(size); err != nil {
		t.Fatal(err)
	}
	scan := scanResult{size: size, extents: []extent{{0, 9 << 30}}, dataBytes: 9 << 30}
	s, err := newTarStream(img, []byte("{}\n"), scan, testTime)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "large.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(s.segs[0].data); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(s.size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatInt(size, 10)

	t.Run("gnu-tar", func(t *testing.T) {
		out := string(run(t, dir, needGNUTar(t), "-tvf", path))
		if !strings.Contains(out, " "+want+" ") || !strings.HasSuffix(strings.TrimSpace(out), " "+RootfsName) {
			t.Errorf("tar -tv lists:\n%s", out)
		}
	})
	t.Run("bsdtar", func(t *testing.T) {
		out := string(run(t, dir, needTool(t, "bsdtar", "libarchive-tools"), "-tvf", path))
		if !strings.Contains(out, " "+want+" ") || !strings.HasSuffix(strings.TrimSpace(out), " "+RootfsName) {
			t.Errorf("bsdtar -tv lists:\n%s", out)
		}
	})
	t.Run("python-tarfile", func(t *testing.T) {
		// The member has no pax size record, which tarfile mishandles
		// for sparse members (CPython issues 136601 and 136602): it
		// must list both members, the image at its real size, and reach
		// the end of the archive where it is.
		python := needTool(t, "python3", "python3")
		cmd := exec.Command(python, "-c", `import sys, tarfile
for m in tarfile.open(sys.argv[1]).getmembers(): print(m.name, m.size, m.sparse is not None)`, path)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != ManifestName+" 3 False\n"+RootfsName+" "+want+" True\n" {
			t.Errorf("python tarfile: %v\n%s", err, out)
		}
	})
	t.Run("go-archive-tar", func(t *testing.T) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tr := tar.NewReader(f) // an *os.File: the 9 GiB are skipped by Seek
		var got []string
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprint(h.Name, " ", h.Size))
		}
		if w := []string{ManifestName + " 3", RootfsName + " " + want}; !slices.Equal(got, w) {
			t.Errorf("archive/tar lists %q, want %q", got, w)
		}
	})
}
