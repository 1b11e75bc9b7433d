// Package agents lists the guest files that make-bundle puts into an image so
// that it boots as a banger guest: the vsock agent, the network and first-boot
// scripts, and what starts them under the image's own init, or ext4pack-init
// where it has none (SPEC.md, "Guest files (agents), banger-compatible
// layout" and "Guest init systems"). ForImage is the one call make-bundle
// makes.
//
// The package does no I/O. Files returns plain data, and the caller writes it
// through the ext4 writer, replacing what the tar had at those paths.
package agents

import (
	"embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DefaultVsockPort is the AF_VSOCK port the agent listens on when
// Options.VsockPort is 0. It is also the agent's own --port default. Binding
// a vsock port below 1024 needs CAP_NET_BIND_SERVICE, so this is the lowest
// port that does not.
const DefaultVsockPort = 1024

// Arch names, as the manifest stores them.
const (
	ArchX86_64  = "x86_64"
	ArchAarch64 = "aarch64"
)

// Guest paths, as SPEC.md's table gives them.
const (
	agentPath         = "/usr/local/bin/banger-vsock-agent"
	networkScriptPath = "/usr/local/libexec/banger-network-bootstrap"
	firstBootPath     = "/usr/local/libexec/banger-first-boot"
	unitDir           = "/etc/systemd/system"
	wantsDir          = unitDir + "/multi-user.target.wants"
	modulesLoadPath   = "/etc/modules-load.d/banger-vsock.conf"
	firstBootMarker   = "/var/lib/banger/first-boot-pending"
	networkUnit       = "banger-network.service"
	agentUnit         = "banger-vsock-agent.service"
	firstBootUnit     = "banger-first-boot.service"
)

const (
	// vsockPortTemplate stands for the port in the agent's unit file.
	vsockPortTemplate = "@VSOCK_PORT@"
	// maxVsockPort is the highest port a listener can ask for: 1<<32 - 1 is
	// VMADDR_PORT_ANY, "any free port" (linux/vm_sockets.h).
	maxVsockPort = 1<<32 - 2
	// symlinkPermissions is what Linux gives every symlink.
	symlinkPermissions = 0o777
)

// ErrNoAgents is returned by Files when the binary was built without the
// embedded agents (see Embedded) and Options.AgentBin is nil.
var ErrNoAgents = errors.New("agents: this ext4pack was built without the guest agents; " +
	"build it with `make build`, or pass --agent-bin PATH (or --no-agents)")

// ErrNoInit is returned by Files when the guest needs ext4pack-init (it has
// no init of its own, or neither ip nor busybox for the network, or it grows
// its root), the binary was built without the embedded one, and
// Options.InitBin is nil.
var ErrNoInit = errors.New("agents: this guest needs ext4pack-init and this ext4pack was built without it; " +
	"build it with `make build`, or pass --init-bin PATH (or --no-grow where only the growth needs it, or --no-agents)")

// Binary is a guest binary built into this ext4pack (see Binaries), named
// as the file it was built into under agents/bin.
type Binary struct {
	Name string
	Data []byte
}

// FileType says what kind of entry a File is.
type FileType uint8

// File types.
const (
	TypeRegular FileType = iota + 1
	TypeDir
	TypeSymlink
	TypeCharDevice
)

// String returns "regular", "dir", "symlink" or "char device".
func (t FileType) String() string {
	switch t {
	case TypeRegular:
		return "regular"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeCharDevice:
		return "char device"
	}
	return "FileType(" + strconv.Itoa(int(t)) + ")"
}

// File is one entry to write into the guest.
type File struct {
	Path   string // absolute and clean, e.g. "/usr/local/bin/banger-vsock-agent"
	Type   FileType
	Mode   uint32 // permission bits only: 0755, 0644; 0777 for a symlink
	Uid    uint32
	Gid    uint32
	Data   []byte // contents of a regular file; the caller owns it
	Target string // target of a symlink
	// Major and Minor number a device.
	Major, Minor uint32
	// IfMissing says to write the file only where the image has nothing
	// at Path, and to keep, silently, what it has.
	IfMissing bool
}

// Options says which guest the files are for.
type Options struct {
	// Arch is the guest's architecture, ArchX86_64 or ArchAarch64. It has no
	// default: the caller resolves aliases such as amd64 first.
	Arch string

	// Distro is the guest's os-release ID. The files are the same for every
	// distro today; the field is here so that callers need not change when
	// one needs its own variant.
	Distro string

	// AgentBin replaces the embedded agent. It must be a static Linux ELF
	// executable for Arch. Nil means the embedded agent for Arch.
	AgentBin []byte

	// InitBin replaces the embedded ext4pack-init, like AgentBin.
	InitBin []byte

	// VsockPort is the port the agent listens on, written into its unit.
	// 0 means DefaultVsockPort; the range is 1 to 4294967294.
	VsockPort uint32

	// Init is the image's init system; the files that start the services
	// are that init's. The zero value is an image without init, which gets
	// ext4pack-init.
	Init InitSystem

	// HasNetTool says the guest has ip or busybox for the network
	// bootstrap. Without, and under ext4pack-init, ext4pack-init is
	// installed too, for its netlink code.
	HasNetTool bool

	// NoGrow leaves out the growth of / to the guest's block device at
	// boot (SPEC "Growing to the disk"). By default every guest grows:
	// ext4pack-init is installed as the helper that asks the kernel for
	// the online resize, with the switch /etc/banger/grow-root and what
	// runs it early under the guest's init.
	NoGrow bool
}

//go:embed guest
var guest embed.FS

// Files returns the guest files for opts, sorted by Path: the agent, the
// scripts, the first-boot marker, ext4pack-init where the guest needs it,
// and what starts them under opts.Init (see ForImage, which fills Init from
// an Image). All are owned by 0:0. The caller replaces any entry the tar has
// at one of these paths, /etc/inittab included, which is given whole,
// edited, and creates the parent directories the tar lacks.
func Files(opts Options) ([]File, error) {
	if opts.Arch != ArchX86_64 && opts.Arch != ArchAarch64 {
		return nil, fmt.Errorf("agents: unknown arch %q (want %s or %s)", opts.Arch, ArchX86_64, ArchAarch64)
	}
	port := opts.VsockPort
	if port == 0 {
		port = DefaultVsockPort
	}
	if port > maxVsockPort {
		return nil, fmt.Errorf("agents: vsock port %d is out of range (1 to %d)", port, uint32(maxVsockPort))
	}
	agent, err := guestBinary("agent", opts.AgentBin, opts.Arch, embeddedAgent)
	if err != nil {
		return nil, err
	}
	files := []File{
		regular(agentPath, 0o755, agent),
		regular(networkScriptPath, 0o755, asset("banger-network-bootstrap.sh")),
		regular(firstBootPath, 0o755, asset("banger-first-boot.sh")),
		regular(modulesLoadPath, 0o644, asset("banger-vsock.conf")),
		regular(firstBootMarker, 0o644, []byte{}),
	}
	if guestInit(opts.Init) == InitExt4pack || !opts.HasNetTool || !opts.NoGrow {
		initBin, err := guestBinary("ext4pack-init", opts.InitBin, opts.Arch, embeddedInit)
		if err != nil {
			return nil, err
		}
		files = append(files, regular(initBinPath, 0o755, initBin))
	}
	more, err := initFiles(opts, port)
	if err != nil {
		return nil, err
	}
	files = append(files, more...)
	if !opts.NoGrow {
		files = append(files, growFiles(opts.Init)...)
	}
	slices.SortFunc(files, byFilePath)
	return files, nil
}

// guestBinary returns a copy of given, else the embedded binary for arch, after
// checking that it can run in the guest.
func guestBinary(what string, given []byte, arch string, embedded func(string) ([]byte, error)) ([]byte, error) {
	var bin []byte
	if given == nil {
		var err error
		if bin, err = embedded(arch); err != nil {
			return nil, err
		}
	} else {
		bin = append([]byte(nil), given...)
	}
	if err := checkBinary(what, bin, arch); err != nil {
		return nil, err
	}
	return bin, nil
}

func byFilePath(a, b File) int { return strings.Compare(a.Path, b.Path) }

func regular(p string, mode uint32, data []byte) File {
	return File{Path: p, Type: TypeRegular, Mode: mode, Data: data}
}

// asset returns a copy of an embedded guest file. The names are constants of
// this package, so a missing one is a build mistake, not an input error.
func asset(name string) []byte {
	b, err := guest.ReadFile("guest/" + name)
	if err != nil {
		panic("agents: missing embedded guest file: " + err.Error())
	}
	return b
}
