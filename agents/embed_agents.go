//go:build embedagents

package agents

import _ "embed"

// The agents and ext4pack-init are built into bin/ by `make build` before
// ext4pack itself; see the package comments of ./vsockagent and
// ./ext4packinit for the exact commands.
var (
	//go:embed bin/banger-vsock-agent-x86_64
	agentX86_64 string
	//go:embed bin/banger-vsock-agent-aarch64
	agentAarch64 string
	//go:embed bin/ext4pack-init-x86_64
	initX86_64 string
	//go:embed bin/ext4pack-init-aarch64
	initAarch64 string
)

// Embedded reports whether this binary carries the agents and ext4pack-init
// for both arches.
const Embedded = true

// Binaries returns the guest binaries this ext4pack carries, sorted by
// name, each a copy: the vsock agent and ext4pack-init for both arches.
func Binaries() []Binary {
	return []Binary{
		{Name: "banger-vsock-agent-aarch64", Data: []byte(agentAarch64)},
		{Name: "banger-vsock-agent-x86_64", Data: []byte(agentX86_64)},
		{Name: "ext4pack-init-aarch64", Data: []byte(initAarch64)},
		{Name: "ext4pack-init-x86_64", Data: []byte(initX86_64)},
	}
}

// embeddedAgent returns a copy of the embedded agent for arch, which Files
// has already checked.
func embeddedAgent(arch string) ([]byte, error) {
	if arch == ArchAarch64 {
		return []byte(agentAarch64), nil
	}
	return []byte(agentX86_64), nil
}

// embeddedInit returns a copy of the embedded ext4pack-init for arch.
func embeddedInit(arch string) ([]byte, error) {
	if arch == ArchAarch64 {
		return []byte(initAarch64), nil
	}
	return []byte(initX86_64), nil
}
