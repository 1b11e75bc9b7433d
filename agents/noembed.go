//go:build !embedagents

package agents

// Embedded reports whether this binary carries the agents and ext4pack-init
// for both arches. A plain `go build` does not; `make build` does.
const Embedded = false

func embeddedAgent(string) ([]byte, error) { return nil, ErrNoAgents }

func embeddedInit(string) ([]byte, error) { return nil, ErrNoInit }

// Binaries returns the guest binaries this ext4pack carries: none.
func Binaries() []Binary { return nil }
