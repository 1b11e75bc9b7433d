//go:build embedagents

package agents

import "testing"

// TestEmbeddedAgents runs only in a `-tags embedagents` build, after make
// build has put the agents into bin/.
func TestEmbeddedAgents(t *testing.T) {
	if !Embedded {
		t.Fatal("Embedded is false in an embedagents build")
	}
	for _, arch := range []string{ArchX86_64, ArchAarch64} {
		t.Run(arch, func(t *testing.T) {
			files, err := Files(Options{Init: systemd, HasNetTool: true, Arch: arch})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(byPath(files)[agentPath].Data); n < 1<<20 {
				t.Errorf("embedded agent is %d bytes; is it a placeholder?", n)
			}
		})
	}
}
