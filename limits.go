package ext4pack

import (
	"github.com/ext4pack/ext4pack/agents"
	"github.com/ext4pack/ext4pack/bundle"
	"github.com/ext4pack/ext4pack/ext4w"
)

// The limits of Options.Size: 64 MiB, the smallest image ext4pack writes
// (SPEC "CLI"), and 16 TiB, 2^32 blocks of 4 KiB, where the resize
// inode's reserved GDT blocks and 32-bit group counts stop.
const (
	MinSize = ext4w.MinSize
	MaxSize = ext4w.MaxSize
)

// SizeError reports that the content needs more room than Options.Size or
// Options.Inodes gave: NeedBytes and NeedInodes say how much, and
// FirstFailed names the first entry that did not fit. It is what Build,
// BuildImage and MakeBundle return, wrapped, for an image too small; tell
// it apart with errors.As, and the inode case with errors.Is(err,
// ErrTooManyInodes).
type SizeError = ext4w.SizeError

// ErrTooManyInodes is wrapped by a *SizeError when the content has more
// entries than Options.Inodes allows.
var ErrTooManyInodes = ext4w.ErrTooManyInodes

// ErrNoAgents is returned, by BundleOptions.Check, when the guest files
// are wanted (BundleOptions.NoAgents unset) with no BundleOptions.AgentBin,
// and this build embeds no vsock agent (see AgentsEmbedded).
var ErrNoAgents = agents.ErrNoAgents

// AgentsEmbedded reports whether this build carries the vsock agent and
// ext4pack-init for both arches (`go build -tags embedagents`, which `make
// build` does), so that a bundle needs neither BundleOptions.AgentBin nor
// InitBin.
const AgentsEmbedded = agents.Embedded

// GuestBinary is a guest binary built into this ext4pack, named as the
// file it was built into: banger-vsock-agent-x86_64, ext4pack-init-aarch64
// and so on.
type GuestBinary = agents.Binary

// GuestBinaries returns the guest binaries this build carries, sorted by
// name, each a copy; none unless AgentsEmbedded.
func GuestBinaries() []GuestBinary { return agents.Binaries() }

// CompressionLevels are the names BundleOptions.Compression takes, from
// the fastest to the smallest bundles: klauspost/compress/zstd's four
// levels.
var CompressionLevels = bundle.Levels

// ValidateName reports what is wrong with a bundle's name
// (BundleOptions.Name): it must be 1-64 characters of [a-z0-9._-],
// starting with a letter or digit.
func ValidateName(name string) error { return bundle.ValidateName(name) }

// Manifest is a bundle's manifest.json (SPEC "Bundle"): what Inspect
// reads from a bundle, and what BundleResult.Manifest holds.
type Manifest = bundle.Manifest
