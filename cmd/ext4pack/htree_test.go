package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// TestEveryBigDirectoryIsHashed is the full-fidelity issue's "done when":
// debugfs finds a hashed index on every directory longer than one block
// but lost+found, and none on the others.
func TestEveryBigDirectoryIsHashed(t *testing.T) {
	debugfs := requireTool(t, "debugfs", "e2fsprogs")
	b := oracle.NewTar(t)
	sizes := map[string]int{"one": 10, "two": 200, "many": 3000, "huge": 20000}
	for d, n := range sizes {
		b.Dir(d, 0o755)
		for i := 0; i < n; i++ {
			b.File(fmt.Sprintf("%s/entry-with-a-name-%05d", d, i), 0o644, nil)
		}
	}
	in := b.Write()
	img := filepath.Join(t.TempDir(), "dirs.ext4")
	if code, _, stderr := runCLI(t, "image", "--rootfs-tar", in, "--out", img); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	oracle.Fsck(t, img)
	cmds := filepath.Join(t.TempDir(), "cmds")
	var script strings.Builder
	dirs := []string{"/", "/lost+found", "/one", "/two", "/many", "/huge"}
	for _, d := range dirs {
		fmt.Fprintf(&script, "stat %s\n", d)
	}
	if err := os.WriteFile(cmds, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(debugfs, "-f", cmds, img).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`Flags: (0x[0-9a-f]+)[\s\S]*?Size: (\d+)`)
	stats := re.FindAllStringSubmatch(string(out), -1)
	if len(stats) != len(dirs) {
		t.Fatalf("debugfs gave %d stats for %d directories:\n%s", len(stats), len(dirs), out)
	}
	for i, d := range dirs {
		flags, _ := strconv.ParseUint(stats[i][1], 0, 32)
		size, _ := strconv.Atoi(stats[i][2])
		hashed := flags&0x1000 != 0
		if want := size > 4096 && d != "/lost+found"; hashed != want {
			t.Errorf("%s: size %d, hashed %v, want %v", d, size, hashed, want)
		}
		if hashed {
			h, err := exec.Command(debugfs, "-R", "htree "+d, img).CombinedOutput()
			if err != nil || !strings.Contains(string(h), "Root node dump") {
				t.Errorf("debugfs htree %s: %v\n%.300s", d, err, h)
			}
		}
	}
}
