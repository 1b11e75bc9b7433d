package agents

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goarches maps an Options.Arch to its GOARCH.
var goarches = map[string]string{ArchX86_64: "amd64", ArchAarch64: "arm64"}

// buildAgent builds the agent for arch into dir exactly as the package
// comment of ./vsockagent tells the Makefile to, and returns its bytes.
func buildAgent(t *testing.T, goTool, arch, dir string) []byte {
	t.Helper()
	out := filepath.Join(dir, "banger-vsock-agent-"+arch)
	cmd := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", out, "./vsockagent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarches[arch])
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for %s: %v\n%s", arch, err, msg)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestAgentBuild builds the agent for both arches the way make build does,
// twice, and checks that the builds are identical, static Linux ELF files of
// the right machine, and that Files accepts them. Where the host can run
// one, it checks --version and a clean exit on SIGTERM too.
func TestAgentBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent twice for two arches")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	for _, arch := range []string{ArchX86_64, ArchAarch64} {
		t.Run(arch, func(t *testing.T) {
			first := buildAgent(t, goTool, arch, t.TempDir())
			second := buildAgent(t, goTool, arch, t.TempDir())
			if !bytes.Equal(first, second) {
				t.Error("two builds differ")
			}
			t.Logf("%s agent: %d bytes", arch, len(first))

			if err := CheckAgent(first, arch); err != nil {
				t.Error(err)
			}
			f, err := elf.NewFile(bytes.NewReader(first))
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != machines[arch] || f.Type != elf.ET_EXEC {
				t.Errorf("ELF %v %v, want %v ET_EXEC", f.Machine, f.Type, machines[arch])
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("program header %v in a static build", p.Type)
				}
			}
			files, err := Files(Options{Init: systemd, HasNetTool: true, NoGrow: true, Arch: arch, AgentBin: first})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(byPath(files)[agentPath].Data, first) {
				t.Error("Files did not install the agent given")
			}

			if runtime.GOOS == "linux" && runtime.GOARCH == goarches[arch] {
				bin := filepath.Join(t.TempDir(), "banger-vsock-agent")
				if err := os.WriteFile(bin, first, 0o755); err != nil {
					t.Fatal(err)
				}
				checkAgentRuns(t, bin)
			}
		})
	}
}

// checkAgentRuns runs a built agent: --version, then a real start that
// SIGTERM must end with status 0, whether or not the host has AF_VSOCK.
func checkAgentRuns(t *testing.T, bin string) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || string(out) != "banger-vsock-agent dev\n" {
		t.Errorf("--version: %q, %v", out, err)
	}

	port := 2_000_000_000 + os.Getpid()
	cmd := exec.Command(bin, "--port="+strconv.Itoa(port))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The first log line ("listening on" or "retrying") comes after the
	// signal handler is in place.
	lines := bufio.NewScanner(stderr)
	if !lines.Scan() {
		t.Fatalf("agent printed nothing: %v", lines.Err())
	}
	first := lines.Text()
	t.Logf("agent: %s", first)
	if !strings.Contains(first, "listening on vsock") && !strings.Contains(first, "retrying") {
		t.Errorf("unexpected first line %q", first)
	}
	go func() {
		for lines.Scan() {
		}
	}()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the agent did not exit within 10s of SIGTERM")
	}
}
