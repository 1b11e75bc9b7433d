package ext4w

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// needTool skips when a test-time oracle is missing, but only outside CI:
// in CI a missing tool is a failure, never a silent skip.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed as a test oracle and CI must install it (e2fsprogs)", name)
		}
		t.Skipf("%s not installed (install e2fsprogs); CI runs this test", name)
	}
	return p
}

// TestDirHashMatchesDebugfs checks half-MD4 against e2fsprogs' own
// implementation (debugfs dx_hash), signed chars included.
func TestDirHashMatchesDebugfs(t *testing.T) {
	debugfs := needTool(t, "debugfs")
	seedHex := "0637bf68-f42f-45ba-8b6d-2774eb7f8732"
	u, _ := hexUUID(seedHex)
	var seed [4]uint32
	for i := range seed {
		seed[i] = uint32(u[4*i]) | uint32(u[4*i+1])<<8 | uint32(u[4*i+2])<<16 | uint32(u[4*i+3])<<24
	}
	names := []string{"a", "hello", "lost+found", "libc.so.6", "ünïcødé-名前",
		strings.Repeat("x", 31), strings.Repeat("y", 32), strings.Repeat("z", 33),
		strings.Repeat("long-name-", 25) + "12345", "\xff\x80\x7f"}
	re := regexp.MustCompile(`is 0x([0-9a-f]+)`)
	for _, seeded := range []bool{false, true} {
		for _, name := range names {
			args := []string{"-R", "dx_hash -h half_md4 " + name}
			s := [4]uint32{}
			if seeded {
				args = []string{"-R", "dx_hash -h half_md4 -s " + seedHex + " " + name}
				s = seed
			}
			out, err := exec.Command(debugfs, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("debugfs: %v: %s", err, out)
			}
			m := re.FindSubmatch(out)
			if m == nil {
				t.Fatalf("debugfs printed no hash for %q: %s", name, out)
			}
			want, _ := strconv.ParseUint(string(m[1]), 16, 32)
			if got := dirHash(name, &s); got != uint32(want)&^1 {
				t.Errorf("seeded=%v %q: hash %#x, debugfs says %#x", seeded, name, got, want)
			}
		}
	}
}

func hexUUID(s string) ([16]byte, error) {
	var u [16]byte
	h := strings.ReplaceAll(s, "-", "")
	for i := range u {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			return u, err
		}
		u[i] = byte(v)
	}
	return u, nil
}

// TestDxNodes checks the htree's shape at the real limit: the dx_root
// holds 507 leaves, then dx_nodes of 510 leaves each, 507 of them at
// most (258,570 leaves); one leaf more is refused.
func TestDxNodes(t *testing.T) {
	if htreeMaxLeaves != 507*510 {
		t.Fatalf("htreeMaxLeaves = %d, want 507 x 510 = %d (no large_dir)", htreeMaxLeaves, 507*510)
	}
	for _, c := range []struct {
		leaves, nodes int
		refused       bool
	}{
		{1, 0, false},
		{507, 0, false},
		{508, 1, false},
		{510, 1, false},
		{511, 2, false},
		{507 * 510, 507, false},
		{507*510 + 1, 0, true},
		{3_000_000, 0, true},
	} {
		n, err := dxNodes(c.leaves)
		if (err != nil) != c.refused || n != c.nodes {
			t.Errorf("dxNodes(%d) = %d, %v; want %d nodes, refused %v", c.leaves, n, err, c.nodes, c.refused)
		}
	}
}
