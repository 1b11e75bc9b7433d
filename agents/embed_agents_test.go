//go:build embedagents

package agents

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestEmbeddedAgents runs only in a `-tags embedagents` build, after make
// build has put the agents into bin/ (`make test` runs it so): the guest
// files of each arch carry, without --agent-bin or --init-bin, the agent
// and ext4pack-init make built, and Binaries lists the four.
func TestEmbeddedAgents(t *testing.T) {
	if !Embedded {
		t.Fatal("Embedded is false in an embedagents build")
	}
	listed := map[string][]byte{}
	for _, b := range Binaries() {
		listed[b.Name] = b.Data
	}
	for _, arch := range []string{ArchX86_64, ArchAarch64} {
		t.Run(arch, func(t *testing.T) {
			// No ip or busybox in the guest: ext4pack-init comes too.
			files, err := Files(Options{Init: systemd, HasNetTool: false, Arch: arch})
			if err != nil {
				t.Fatal(err)
			}
			for path, name := range map[string]string{agentPath: "banger-vsock-agent-" + arch, initBinPath: "ext4pack-init-" + arch} {
				built, err := os.ReadFile(filepath.Join("bin", name))
				if err != nil {
					t.Fatal(err)
				}
				got := byPath(files)[path].Data
				if len(got) < 1<<20 || !bytes.Equal(got, built) || !bytes.Equal(listed[name], built) {
					t.Errorf("%s: the embedded %s (%d bytes, listed %d) is not bin/%s (%d bytes)", path, name, len(got), len(listed[name]), name, len(built))
				}
			}
		})
	}
	if len(listed) != 4 {
		t.Errorf("Binaries lists %d binaries, want 4", len(listed))
	}
}
