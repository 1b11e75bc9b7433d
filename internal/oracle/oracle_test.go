package oracle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTB records what a judge reports instead of failing the real test,
// so the judges' own failures can be tested. Fatal ends the calling
// goroutine, as testing.T's does.
type fakeTB struct {
	testing.TB // the real test, for TempDir, Cleanup and anything not overridden
	mu         sync.Mutex
	failed     bool
	skipped    bool
	msgs       []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) record(failed, skipped bool, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = f.failed || failed
	f.skipped = f.skipped || skipped
	f.msgs = append(f.msgs, msg)
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.record(true, false, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.record(true, false, fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) { f.record(true, false, fmt.Sprint(args...)); runtime.Goexit() }
func (f *fakeTB) Skipf(format string, args ...any) {
	f.record(false, true, fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (f *fakeTB) Failed() bool { return f.failed }

// runFake runs judge against a fakeTB in its own goroutine (Goexit must not
// end the real test) and returns what it recorded.
func runFake(t *testing.T, judge func(tb testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		judge(f)
	}()
	<-done
	return f
}

const cleanFsckOutput = `e2fsck 1.47.0 (5-Feb-2023)
Pass 1: Checking inodes, blocks, and sizes
Pass 2: Checking directory structure
Pass 3: Checking directory connectivity
Pass 4: Checking reference counts
Pass 5: Checking group summary information
img: 11/4096 files (9.1% non-contiguous), 1297/16384 blocks
`

func TestFsckProblems(t *testing.T) {
	passes := strings.Join(fsckPasses, "\n") + "\n"
	cases := []struct {
		name, out string
		clean     bool
	}{
		{"clean", cleanFsckOutput, true},
		{"banner last (stderr after stdout)", strings.Replace(cleanFsckOutput, "e2fsck 1.47.0 (5-Feb-2023)\n", "", 1) + "e2fsck 1.47.0 (5-Feb-2023)\n", true},
		{"label instead of path", passes + "my label: 11/4096 files (0.0% non-contiguous), 1297/16384 blocks\n", true},
		{"free blocks count wrong", strings.Replace(cleanFsckOutput, "Pass 5: Checking group summary information\n",
			"Pass 5: Checking group summary information\nFree blocks count wrong (15087, counted=15086).\nFix? no\n\n", 1), false},
		{"journal", "Superblock has_journal flag is clear, but a journal is present.\n" + cleanFsckOutput, false},
		{"checksum", strings.Replace(cleanFsckOutput, "Pass 2", "Inode 12 passes checks, but checksum does not match inode.  Fix? no\n\nPass 2", 1), false},
		{"extra pass", strings.Replace(cleanFsckOutput, "Pass 4", "Pass 3A: Optimizing directories\nPass 4", 1), false},
		{"missing pass", strings.Replace(cleanFsckOutput, "Pass 5: Checking group summary information\n", "", 1), false},
		{"missing summary", "e2fsck 1.47.0 (5-Feb-2023)\n" + passes, false},
		{"two summaries", cleanFsckOutput + "img: 11/4096 files (9.1% non-contiguous), 1297/16384 blocks\n", false},
		{"warning", "Warning: skipping journal recovery because doing a read-only filesystem check.\n" + cleanFsckOutput, false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			problems := fsckProblems(c.out)
			if clean := len(problems) == 0; clean != c.clean {
				t.Errorf("clean = %v, want %v; problems: %q", clean, c.clean, problems)
			}
		})
	}
}

func TestParseDumpe2fs(t *testing.T) {
	got := parseDumpe2fs("Filesystem features:      has_journal ext_attr\nInode size:\t          256\nno colon here\nJournal features:         (none)\n")
	want := map[string]string{"Filesystem features": "has_journal ext_attr", "Inode size": "256", "Journal features": "(none)"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// mkfsImage makes a fresh reference image in a temporary directory.
func mkfsImage(t *testing.T, extra ...string) string {
	img := filepath.Join(t.TempDir(), "ref.ext4")
	Mkfs(t, img, 64<<20, extra...)
	return img
}

func TestMkfsPinning(t *testing.T) {
	img := mkfsImage(t)
	h := Dumpe2fsHeader(t, img)
	want := map[string]string{
		"Filesystem features":    strings.Join(SpecFeatures(), " "),
		"Block size":             "4096",
		"Inode size":             "256",
		"Inode count":            "4096", // 64 MiB / 16 KiB inode ratio
		"Journal features":       "(none)",
		"Checksum type":          "crc32c",
		"Default directory hash": "half_md4",
		"Default mount options":  "user_xattr acl",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("dumpe2fs %q = %q, want %q", k, h[k], v)
		}
	}
	// SPEC: every group has ITABLE_ZEROED. dumpe2fs lists group flags only
	// in its full output.
	out, err := command("dumpe2fs", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	groups := regexp.MustCompile(`(?m)^Group \d+: .*$`).FindAllString(string(out), -1)
	if len(groups) == 0 {
		t.Fatalf("no groups in dumpe2fs output:\n%s", out)
	}
	for _, g := range groups {
		if !strings.Contains(g, "ITABLE_ZEROED") {
			t.Errorf("group without ITABLE_ZEROED: %s", g)
		}
	}
}

func TestFsck(t *testing.T) {
	t.Run("fresh image is clean", func(t *testing.T) {
		img := mkfsImage(t)
		Fsck(t, img)
		out, clean, err := FsckOutput(img)
		if err != nil || !clean {
			t.Fatalf("FsckOutput: clean=%v err=%v\n%s", clean, err, out)
		}
	})

	// Each corruption must make the judge fail. The want pattern is what
	// e2fsck 1.47 says, to show the right problem was caught.
	corruptions := []struct {
		name     string
		corrupt  func(t *testing.T, img string)
		want     string
		exitZero bool // e2fsck exits 0: only the output shows the problem
	}{
		{"superblock free blocks count flipped", func(t *testing.T, img string) {
			// s_free_blocks_count_lo is at 0x0C in the superblock (byte 1024);
			// the stored crc32c no longer matches.
			flipByte(t, img, 1024+0x0C)
		}, `(?i)superblock.*(checksum|corrupt)|checksum.*superblock`, false},
		{"inode bitmap zeroed", func(t *testing.T, img string) {
			zeroBlock(t, img, inodeBitmapBlock(t, img))
		}, `(?i)inode bitmap`, false},
		{"superblock free blocks count wrong, checksum right", func(t *testing.T, img string) {
			// debugfs rewrites the superblock checksum. e2fsck 1.47.0 -n
			// then exits 0 but says "Free blocks count wrong": the exit
			// status alone would pass this image.
			debugfs(t, img, "ssv free_blocks_count 12345")
		}, `Free blocks count wrong \(12345, counted=\d+\)`, true},
		{"group free blocks count wrong", func(t *testing.T, img string) {
			// set_bg leaves the descriptor checksum stale; recomputing it
			// leaves only the count wrong.
			debugfs(t, img, "set_bg 0 free_blocks_count 5", "set_bg 0 checksum calc")
		}, `Free blocks count wrong for group #0`, false},
		{"journal inode cleared", func(t *testing.T, img string) {
			debugfs(t, img, "ssv journal_inum 0")
		}, `(?i)journal`, false},
		{"not a filesystem", func(t *testing.T, img string) {
			zeroBlock(t, img, 0)
		}, `(?i)bad magic number|superblock`, false},
	}
	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			img := mkfsImage(t)
			c.corrupt(t, img)
			out, clean, err := FsckOutput(img)
			if err != nil {
				t.Fatal(err)
			}
			if clean {
				t.Fatalf("FsckOutput says clean after corruption:\n%s", out)
			}
			if c.exitZero {
				if res, _ := RunFsck(img); res.ExitCode != 0 {
					t.Errorf("e2fsck exit status %d; this case is meant to show a problem with status 0", res.ExitCode)
				}
			}
			if !regexp.MustCompile(c.want).MatchString(out) {
				t.Errorf("output does not match %q:\n%s", c.want, out)
			}
			f := runFake(t, func(tb testing.TB) { Fsck(tb, img) })
			if !f.failed || !strings.Contains(strings.Join(f.msgs, "\n"), "full output:") {
				t.Errorf("Fsck did not fail with the full output: failed=%v msgs=%q", f.failed, f.msgs)
			}
		})
	}
}

func flipByte(t *testing.T, img string, off int64) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func zeroBlock(t *testing.T, img string, block int64) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, 4096), block*4096); err != nil {
		t.Fatal(err)
	}
}

// inodeBitmapBlock returns group 0's inode bitmap block, from dumpe2fs.
func inodeBitmapBlock(t *testing.T, img string) int64 {
	t.Helper()
	out, err := command("dumpe2fs", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Inode bitmap at (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no inode bitmap in dumpe2fs output:\n%s", out)
	}
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// debugfs runs write-mode debugfs commands on img and fails t if debugfs
// printed anything but its banner, the echo of the commands, blank lines
// and the reports of "write" and "set_bg N checksum calc": debugfs exits
// 0 even when a command fails.
func debugfs(t *testing.T, img string, cmds ...string) {
	t.Helper()
	requireTool(t, "debugfs", "e2fsprogs")
	script := filepath.Join(t.TempDir(), "debugfs.cmds")
	if err := os.WriteFile(script, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := command("debugfs", "-w", "-f", script, img)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		switch {
		case strings.HasPrefix(line, "debugfs "), strings.HasPrefix(line, "debugfs: "),
			strings.TrimSpace(line) == "", strings.HasPrefix(line, "Allocated inode: "),
			strings.HasPrefix(line, "Checksum set to "):
		default:
			t.Fatalf("debugfs reported a problem: %q\nfull output:\n%s", line, out)
		}
	}
}

// treeOf builds the expected tree of b's tar.
func treeOf(t *testing.T, b *TarBuilder) *tree {
	t.Helper()
	tr, err := expectedTree(b.Write())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// paths lists a tree's paths, sorted, root excluded.
func (tr *tree) paths() []string {
	var ps []string
	for p := range tr.nodes {
		if p != "" {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

func TestTarRules(t *testing.T) {
	t0 := time.Unix(1000, 5)
	t.Run("name cleaning and implicit parents", func(t *testing.T) {
		b := NewTar(t)
		b.File("./a/b/f", 0o644, nil)
		b.File("/c/g", 0o644, nil)
		b.Dir("d/", 0o700)
		b.File("d//e/./h", 0o644, nil)
		tr := treeOf(t, b)
		want := []string{"a", "a/b", "a/b/f", "c", "c/g", "d", "d/e", "d/e/h"}
		if got := tr.paths(); !slices.Equal(got, want) {
			t.Fatalf("paths %q, want %q", got, want)
		}
		for _, p := range []string{"a", "a/b", "c", "d/e", ""} {
			n := tr.nodes[p]
			if !n.created || n.hasMtime || n.kind != kindDir || n.perm != 0o755 || n.uid != 0 || n.gid != 0 {
				t.Errorf("%q: want an implicit root:root 0755 dir without mtime, got %+v", p, n)
			}
		}
		if n := tr.nodes["d"]; n.created || n.perm != 0o700 {
			t.Errorf("d: explicit entry lost: %+v", n)
		}
		if tr.rootEntry {
			t.Error("rootEntry set without a . entry")
		}
	})
	t.Run("root entry", func(t *testing.T) {
		b := NewTar(t)
		b.Dir(".", 0o750).Owner(1, 2).Time(t0)
		tr := treeOf(t, b)
		if n := tr.nodes[""]; !tr.rootEntry || n.perm != 0o750 || n.uid != 1 || n.gid != 2 || !n.mtime.Equal(t0) {
			t.Errorf("root: %+v rootEntry=%v", n, tr.rootEntry)
		}
	})
	t.Run("later entry replaces", func(t *testing.T) {
		b := NewTar(t)
		b.File("f", 0o600, []byte("old"))
		b.File("f", 0o644, []byte("new!"))
		b.Dir("d", 0o755)
		b.File("d/child", 0o644, nil)
		b.File("d", 0o644, []byte("file now"))
		tr := treeOf(t, b)
		if n := tr.nodes["f"]; n.perm != 0o644 || n.size != 4 || n.sum != sha256.Sum256([]byte("new!")) {
			t.Errorf("f not replaced: %+v", n)
		}
		if got := tr.paths(); !slices.Equal(got, []string{"d", "f"}) || tr.nodes["d"].kind != kindReg {
			t.Errorf("directory d not replaced by a file with its children gone: %q", got)
		}
	})
	t.Run("dir entry updates and keeps children", func(t *testing.T) {
		b := NewTar(t)
		b.Dir("d", 0o755).Xattr("user.a", "1")
		b.File("d/child", 0o644, nil)
		b.Dir("d", 0o700).Owner(5, 6).Time(t0)
		tr := treeOf(t, b)
		n := tr.nodes["d"]
		if n.perm != 0o700 || n.uid != 5 || !n.mtime.Equal(t0) || n.xattrs != nil || tr.nodes["d/child"] == nil {
			t.Errorf("d: %+v, child %v", n, tr.nodes["d/child"])
		}
	})
	t.Run("whiteouts", func(t *testing.T) {
		b := NewTar(t)
		b.File("f", 0o644, nil)
		b.Dir("d", 0o755)
		b.File("d/x", 0o644, nil)
		b.File("keep", 0o644, nil)
		b.File(".wh.f", 0o644, nil)
		b.File(".wh.d", 0o644, nil)
		b.File("keep2/.wh..wh..opq", 0o644, nil)
		b.File(".wh.never-existed", 0o644, nil)
		tr := treeOf(t, b)
		if got := tr.paths(); !slices.Equal(got, []string{"keep"}) {
			t.Errorf("paths %q, want only keep", got)
		}
	})
	t.Run("hardlinks", func(t *testing.T) {
		b := NewTar(t)
		b.File("a", 0o640, []byte("x")).Owner(3, 4)
		b.Hardlink("b", "a")
		b.Hardlink("./c", "/a").Owner(9, 9) // the link's own header is not used
		b.File("a", 0o644, []byte("replacement"))
		tr := treeOf(t, b)
		if tr.nodes["b"] != tr.nodes["c"] || tr.nodes["a"] == tr.nodes["b"] {
			t.Fatalf("b and c must share the old inode, a is new")
		}
		if n := tr.nodes["c"]; n.uid != 3 || n.perm != 0o640 || n.size != 1 {
			t.Errorf("link metadata: %+v", n)
		}
	})
	t.Run("xattrs", func(t *testing.T) {
		b := NewTar(t)
		e := b.File("f", 0o644, nil).Xattr("user.s", "schily\x00bin").LibarchiveXattr("user.odd=name%", "\x00\xffbin")
		e.PAX = map[string]string{
			"SCHILY.xattr.user.both":      "from schily",
			"LIBARCHIVE.xattr.user.both":  "ZnJvbSBsaWJhcmNoaXZl", // "from libarchive"
			"LIBARCHIVE.xattr.user.nopad": "YWI",                  // "ab", unpadded
		}
		tr := treeOf(t, b)
		want := map[string]string{"user.s": "schily\x00bin", "user.odd=name%": "\x00\xffbin", "user.both": "from libarchive", "user.nopad": "ab"}
		if got := tr.nodes["f"].xattrs; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("xattrs %q, want %q", got, want)
		}
	})
	t.Run("gzip", func(t *testing.T) {
		b := NewTar(t)
		b.File("f", 0o644, []byte("gz"))
		tr, err := expectedTree(b.WriteGzip())
		if err != nil || tr.nodes["f"] == nil {
			t.Fatalf("gzip tar: %v", err)
		}
	})
	t.Run("zstd refused", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "x.tar.zst")
		if err := os.WriteFile(p, []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0}, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := expectedTree(p); err == nil || !strings.Contains(err.Error(), "zstd") {
			t.Errorf("err = %v, want a zstd error", err)
		}
	})

	errCases := []struct {
		name  string
		build func(b *TarBuilder)
		want  string
	}{
		{"climbs out", func(b *TarBuilder) { b.File("a/../../etc/passwd", 0o644, nil) }, "climbs out"},
		{"absolute climb", func(b *TarBuilder) { b.File("/../x", 0o644, nil) }, "climbs out"},
		{"hardlink to nothing", func(b *TarBuilder) { b.Hardlink("b", "a") }, "no earlier entry"},
		{"hardlink to later entry", func(b *TarBuilder) { b.Hardlink("b", "a"); b.File("a", 0o644, nil) }, "no earlier entry"},
		{"hardlink to dir", func(b *TarBuilder) { b.Dir("d", 0o755); b.Hardlink("b", "d") }, "directory"},
		{"entry under a file", func(b *TarBuilder) { b.File("f", 0o644, nil); b.File("f/g", 0o644, nil) }, "not a directory"},
		{"long component", func(b *TarBuilder) { b.File(strings.Repeat("x", 256), 0o644, nil) }, "256 bytes"},
		{"long symlink", func(b *TarBuilder) { b.Symlink("l", strings.Repeat("x", 4096)) }, "4096 bytes"},
		{"root not a dir", func(b *TarBuilder) { b.File(".", 0o644, nil) }, "root entry"},
		{"unknown type", func(b *TarBuilder) { b.Add(TarEntry{Name: "x", Type: 'Z'}) }, "typeflag"},
	}
	for _, c := range errCases {
		t.Run("error/"+c.name, func(t *testing.T) {
			b := NewTar(t)
			c.build(b)
			_, err := expectedTree(b.Write())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestEveryTypeTar(t *testing.T) {
	p1, p2 := EveryTypeTar(t), EveryTypeTar(t)
	b1, err := os.ReadFile(p1)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := os.ReadFile(p2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatal("EveryTypeTar is not deterministic")
	}
	tr, err := expectedTree(p1)
	if err != nil {
		t.Fatal(err)
	}
	kinds := make(map[kind]int)
	for _, n := range tr.nodes {
		kinds[n.kind]++
	}
	for _, k := range []kind{kindDir, kindReg, kindSymlink, kindChar, kindBlock, kindFifo} {
		if kinds[k] == 0 {
			t.Errorf("no %v", k)
		}
	}
	if tr.nodes["hl/one"] != tr.nodes["usr/bin/three"] {
		t.Error("hardlink group not shared")
	}
	if n := tr.nodes["links/slow4095"]; len(n.target) != 4095 {
		t.Errorf("slow4095 target is %d bytes", len(n.target))
	}
	if n := tr.nodes["dev/big"]; n.major != 300 || n.minor != 70000 {
		t.Errorf("dev/big %d:%d", n.major, n.minor)
	}
	if n := tr.nodes["times/y1960"]; n.mtime.Year() != 1960 || n.mtime.Nanosecond() != 250000000 {
		t.Errorf("y1960 mtime %v", n.mtime)
	}
	capv := tr.nodes["usr/bin/ping"].xattrs["security.capability"]
	if len(capv) != 20 || binary.LittleEndian.Uint32([]byte(capv)) != 0x02000001 {
		t.Errorf("security.capability %x", capv)
	}
	if big := tr.nodes["data/xattrs"].xattrs["user.big"]; len(big) != 2048 || !strings.Contains(big, "\x00") {
		t.Errorf("user.big is %d bytes", len(big))
	}
	if n := tr.nodes["etc/replaced"]; n.gid != 42 {
		t.Errorf("etc/replaced: second copy did not win: %+v", n)
	}
	if _, err := NewestMtime(p1); err != nil {
		t.Error(err)
	}
	// The writer of the tar must have written what the builder holds.
	f, err := os.Open(p1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr, err := tar.NewReader(f).Next()
	if err != nil || hdr.Format&tar.FormatPAX == 0 {
		t.Errorf("first header %v format %v, want PAX", err, hdr.Format)
	}
}

func TestDiffTrees(t *testing.T) {
	// diffTrees must report each kind of difference with path and field,
	// and nothing when the trees agree; the mount tests check it end to end.
	b := NewTar(t)
	b.File("f", 0o644, []byte("x")).Xattr("user.a", "1")
	b.Hardlink("g", "f")
	b.File("h", 0o644, []byte("x"))
	b.Dir("d", 0o755)
	exp := treeOf(t, b)
	got := map[string]*node{}
	nlink := map[*node]uint64{}
	for _, n := range exp.nodes {
		nlink[n]++
	}
	ino := uint64(100)
	inos := map[*node]uint64{}
	for p, n := range exp.nodes {
		c := *n
		if inos[n] == 0 {
			ino++
			inos[n] = ino
		}
		c.ino, c.nlink = inos[n], nlink[n]
		if n.kind == kindDir {
			c.nlink = 2
			if p == "" {
				c.nlink = 3
			}
		}
		c.mtime, c.hasMtime = time.Unix(1, 0), true
		got[p] = &c
	}
	opts := []CompareOption{Skip("lost+found")}
	o := &compareOptions{}
	if err := o.apply(opts); err != nil {
		t.Fatal(err)
	}
	// Mtimes differ everywhere but the created root; with "mtime" ignored
	// the trees agree.
	o.ignoreFields = []string{"mtime"}
	if d := diffTrees(treeOf(t, b), got, o); len(d) != 0 {
		t.Fatalf("equal trees differ:\n%s", formatDiffs(d))
	}
	got["h"].ino = got["f"].ino
	got["f"].xattrs = map[string]string{"user.a": "2"}
	got["d"].perm = 0o4755
	got["x"] = &node{kind: kindFifo, nlink: 1, ino: 999}
	delete(got, "g")
	d := diffTrees(treeOf(t, b), got, o)
	var lines []string
	for _, x := range d {
		lines = append(lines, x.Path+" "+x.Field)
	}
	want := []string{"/d mode", "/f xattr user.a", "/g exists", "/h inode", "/x exists"}
	if !slices.Equal(lines, want) {
		t.Errorf("differences:\n%s\nwant fields %q", formatDiffs(d), want)
	}
}

func TestOptions(t *testing.T) {
	o := &compareOptions{}
	for _, opt := range []CompareOption{IgnoreExtra("/a/b/"), Skip("./c"), CreatedMtime(time.Unix(5, 0)), IgnoreFields("nlink")} {
		if err := opt(o); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(o.ignoreExtra, []string{"a/b"}) || !slices.Equal(o.skip, []string{"c"}) || !o.hasCreated {
		t.Errorf("options: %+v", o)
	}
	for _, bad := range []CompareOption{IgnoreExtra("../x"), CreatedMtime(time.Time{}), IgnoreFields("colour")} {
		if err := bad(&compareOptions{}); err == nil {
			t.Error("bad option accepted")
		}
	}
	if !under("a/b/c", []string{"a/b"}) || under("a/bc", []string{"a/b"}) {
		t.Error("under")
	}
}

func TestMkfsExtendedOptions(t *testing.T) {
	// A caller's -E must not replace Mkfs's own (mke2fs keeps the last -E).
	const seed = "11111111-2222-3333-4444-555555555555"
	t.Setenv("E2FSPROGS_FAKE_TIME", "1000000000")
	for _, args := range [][]string{{"-E", "hash_seed=" + seed}, {"-Ehash_seed=" + seed}} {
		img := mkfsImage(t, append(args, "-U", "00000000-0000-0000-0000-000000000001")...)
		h := Dumpe2fsHeader(t, img)
		if h["Directory Hash Seed"] != seed || h["Filesystem UUID"] != "00000000-0000-0000-0000-000000000001" {
			t.Errorf("%q: seed %q, uuid %q", args, h["Directory Hash Seed"], h["Filesystem UUID"])
		}
		if !strings.HasPrefix(h["Filesystem created"], "Sun Sep  9 01:46:40 2001") {
			t.Errorf("E2FSPROGS_FAKE_TIME not used: created %q", h["Filesystem created"])
		}
	}
}

// TestACLXattr checks the oracle's reading of an ACL's text against the
// bytes the kernel returned for the same ACLs set by GNU tar --acls
// (getfattr -e hex on an ext4 file system).
func TestACLXattr(t *testing.T) {
	hexv := func(s string) string {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		name, text string
		access     bool
		want       string // "" for no xattr
		err        bool
	}{
		{"named user with mask", "user::rw-\nuser:1000:r-x\ngroup::r--\nmask::r-x\nother::r--\n", true,
			hexv("0200000001000600ffffffff02000500e803000004000400ffffffff10000500ffffffff20000400ffffffff"), false},
		{"out of order, commas, short tags", "o::r-x,m::rwx,u:1000:rwx,g::r-x,u::rwx", false,
			hexv("0200000001000700ffffffff02000700e803000004000500ffffffff10000700ffffffff20000500ffffffff"), false},
		{"star's numeric field, comments", "user::rw-\nuser:joe:r--:1000\t#effective:r--\ngroup::r--\nmask::r--\nother::---", true,
			hexv("0200000001000600ffffffff02000400e803000004000400ffffffff10000400ffffffff20000000ffffffff"), false},
		{"minimal access ACL: none", "user::rwx\ngroup::r-x\nother::r-x\n", true, "", false},
		{"minimal default ACL: kept", "user::rwx\ngroup::r-x\nother::r-x\n", false,
			hexv("0200000001000700ffffffff04000500ffffffff20000500ffffffff"), false},
		{"named by name", "user::rw-\nuser:joe:r--\ngroup::r--\nmask::r--\nother::---", true, "", true},
		{"bad perms", "user::rwz\ngroup::r--\nother::---", true, "", true},
		{"empty", "", true, "", true},
	} {
		got, err := aclXattr(c.text, c.access)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%s: %x, %v; want %x, error %v", c.name, got, err, c.want, c.err)
		}
	}
}
