package disttest

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// What make dist is run with: a version and commit of the test's own, so
// that the output does not depend on the checkout's git state.
const (
	testVersion = "v9.8.7-disttest"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// platforms are make dist's, with what each binary must be.
var platforms = []struct {
	file, goos, goarch string
}{
	{"ext4pack-linux-amd64", "linux", "amd64"},
	{"ext4pack-linux-arm64", "linux", "arm64"},
	{"ext4pack-darwin-amd64", "darwin", "amd64"},
	{"ext4pack-darwin-arm64", "darwin", "arm64"},
	{"ext4pack-windows-amd64.exe", "windows", "amd64"},
}

// need returns the path of tool, or skips (outside CI) or fails (in CI).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed, and CI is set", tool)
	}
	t.Skipf("%s is not installed (set CI to make this a failure)", tool)
	return ""
}

// TestDist runs `make dist` twice, from the source tree and from a copy of
// it at another path with no agents built yet, and checks that:
//   - both runs give the same files, byte for byte (SPEC "Output files":
//     on any machine; -trimpath and the rest keep paths and build ids out);
//   - each binary is for its platform, and the Linux ones are static;
//   - SHA256SUMS lists every binary with its checksum;
//   - the dist binary for this machine runs, and its `version` prints the
//     stamped version and commit, the Go version, and the sha256 of each
//     guest binary the agents package embeds;
//   - those guest binaries were built for the base instruction set of
//     their arch (GOAMD64=v1, GOARM64=v8.0, as Go records it in each
//     binary), though the copy's make dist runs with GOAMD64=v3 and
//     GOARM64=v9.0 in its environment: a guest binary must run on any CPU
//     of its arch, and must not depend on the builder's settings.
func TestDist(t *testing.T) {
	makeTool := need(t, "make")
	git := need(t, "git")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}

	// The copy: the files git would put in a clean clone, and those not
	// yet committed, without what is ignored (bin/, agents/bin/, dist/).
	ls := exec.Command(git, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = root
	out, err := ls.Output()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("git ls-files: %v; CI runs on a clone", err)
		}
		t.Skipf("not a git checkout (%v): make dist's test copies the tree with git ls-files", err)
	}
	copyDir := filepath.Join(t.TempDir(), "a", "longer", "path", "to", "the", "source")
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(root, name))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(copyDir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	dists := []string{filepath.Join(t.TempDir(), "dist1"), filepath.Join(t.TempDir(), "dist2")}
	for i, src := range []string{root, copyDir} {
		cmd := exec.Command(makeTool, "-C", src, "dist", "DIST="+dists[i], "VERSION="+testVersion, "COMMIT="+testCommit)
		if src == copyDir {
			// A builder's own settings, which no binary may follow.
			cmd.Env = append(os.Environ(), "GOAMD64=v3", "GOARM64=v9.0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make dist in %s: %v\n%s", src, err, out)
		}
	}

	want := []string{"SHA256SUMS"}
	for _, p := range platforms {
		want = append(want, p.file)
	}
	slices.Sort(want)
	var sums strings.Builder
	for _, name := range want {
		a, err := os.ReadFile(filepath.Join(dists[0], name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dists[1], name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between the two runs (%d and %d bytes)", name, len(a), len(b))
		}
		if bytes.Contains(a, []byte(copyDir)) || bytes.Contains(a, []byte(root)) {
			t.Errorf("%s holds the path of the source tree", name)
		}
		if name != "SHA256SUMS" {
			fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(a), name)
		}
	}
	entries, err := os.ReadDir(dists[0])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("dist holds %v, want %v", got, want)
	}
	if listed, err := os.ReadFile(filepath.Join(dists[0], "SHA256SUMS")); err != nil || string(listed) != sums.String() {
		t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", listed, sums.String())
	}

	for _, p := range platforms {
		checkFormat(t, filepath.Join(dists[0], p.file), p.goos, p.goarch)
	}

	// Run this machine's binary.
	self := ""
	for _, p := range platforms {
		if p.goos == runtime.GOOS && p.goarch == runtime.GOARCH {
			self = filepath.Join(dists[0], p.file)
		}
	}
	if self == "" {
		t.Skipf("make dist has no binary for %s/%s to run", runtime.GOOS, runtime.GOARCH)
	}
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	printed, err := exec.Command(self, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", self, err)
	}
	wantLines := []string{
		"ext4pack " + testVersion,
		"commit: " + testCommit,
		fmt.Sprintf("go: %s %s/%s", strings.TrimSpace(string(goVersion)), runtime.GOOS, runtime.GOARCH),
	}
	// The guest binaries make dist embedded: those it built in the copy.
	guests, err := filepath.Glob(filepath.Join(copyDir, "agents", "bin", "*"))
	if err != nil || len(guests) < 2 {
		t.Fatalf("guest binaries built by make dist: %v, %v", guests, err)
	}
	for _, g := range guests {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		wantLines = append(wantLines, fmt.Sprintf("%s: sha256 %x", filepath.Base(g), sha256.Sum256(data)))
		checkBaseISA(t, g)
	}
	if got := strings.TrimSpace(string(printed)); got != strings.Join(wantLines, "\n") {
		t.Errorf("%s version printed:\n%s\nwant:\n%s", filepath.Base(self), got, strings.Join(wantLines, "\n"))
	}
}

// checkBaseISA checks that the guest binary at path (NAME-x86_64 or
// NAME-aarch64) was built for its arch's base instruction set, as Go's
// build info in the binary records it (it is kept with -s -w and
// -buildvcs=false).
func checkBaseISA(t *testing.T, path string) {
	t.Helper()
	name := filepath.Base(path)
	want := map[string][2]string{"x86_64": {"GOAMD64", "v1"}, "aarch64": {"GOARM64", "v8.0"}}[name[strings.LastIndex(name, "-")+1:]]
	if want[0] == "" {
		t.Errorf("%s: not a guest binary of a known arch", name)
		return
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	got := ""
	for _, s := range bi.Settings {
		if s.Key == want[0] {
			got = s.Value
		}
	}
	if got != want[1] {
		t.Errorf("%s: built with %s=%q, want %s", name, want[0], got, want[1])
	}
}

// checkFormat checks that path is an executable for goos/goarch, and, for
// Linux, a static one: no program interpreter, no dynamic section.
func checkFormat(t *testing.T, path, goos, goarch string) {
	t.Helper()
	name := filepath.Base(path)
	switch goos {
	case "linux":
		f, err := elf.Open(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		defer f.Close()
		machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
		if f.Type != elf.ET_EXEC || f.Machine != machine {
			t.Errorf("%s: ELF type %v machine %v, want an executable for %v", name, f.Type, f.Machine, machine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is not static: it has %v", name, p.Type)
			}
		}
	case "darwin":
		f, err := macho.Open(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		defer f.Close()
		cpu := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		if f.Type != macho.TypeExec || f.Cpu != cpu {
			t.Errorf("%s: Mach-O type %v cpu %v, want an executable for %v", name, f.Type, f.Cpu, cpu)
		}
	case "windows":
		f, err := pe.Open(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		defer f.Close()
		if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
			t.Errorf("%s: PE machine %#x, want amd64", name, f.Machine)
		}
	}
}
