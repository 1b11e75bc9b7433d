package agents

import (
	"fmt"
	"strconv"
	"strings"
)

// Init system names: what InitSystem.Name says an image's /sbin/init is,
// and, all but InitNone and InitUnknown, the guest_init the manifest
// records (SPEC "Guest init systems"). Every guest init but InitExt4pack is
// the guest's own.
const (
	InitNone     = ""              // no /sbin/init: a container image; it gets ext4pack-init
	InitSystemd  = "systemd"       // /sbin/init -> .../systemd
	InitOpenRC   = "openrc"        // see InitSystem.Name for its three shapes
	InitRunit    = "runit"         // /sbin/init -> .../runit-init
	InitBusybox  = "busybox"       // /sbin/init is busybox, with no OpenRC behind it
	InitSysvinit = "sysvinit"      // sysvinit's /sbin/init with its /etc/inittab
	InitExt4pack = "ext4pack-init" // ext4pack's own: from an earlier make-bundle, or for an image with none
	InitUnknown  = "unknown"       // an /sbin/init of none of these kinds: an error
)

// Flavours of an init, as InitSystem.Flavor gives them.
const (
	// RunitVoid is a runit whose stage 1 sources
	// /etc/runit/core-services/*.sh (Void).
	RunitVoid = "void"
	// RunitDebian is a runit whose stage 1 runs the sysv-rc scripts of
	// /etc/rcS.d (Debian's runit-init).
	RunitDebian = "debian"
	// OpenRCNoBoot is an OpenRC that never enters the boot runlevel:
	// Debian's, whose /etc/init.d/rcS runs `openrc sysinit`. Its set-up
	// services go into sysinit.
	OpenRCNoBoot = "no-boot-runlevel"
)

// Image is what the guest files depend on in the image they go into: its
// init, its distro, and whether it has a network tool. The caller reads it
// from the image; package ext4pack fills it from what it learnt while the
// image's entries streamed by.
type Image struct {
	// Init is what the image's /sbin/init is. The zero value is an image
	// without one, which gets ext4pack-init.
	Init InitSystem
	// Distro is the image's os-release ID ("" when it has none);
	// Options.Distro defaults to it.
	Distro string
	// HasNetTool says the image has ip (iproute2's or busybox's) or
	// busybox, which the network bootstrap configures the interface with.
	HasNetTool bool
}

// InitSystem is what an image's /sbin/init turned out to be, and what of
// it the guest files depend on.
type InitSystem struct {
	// Name is one of the Init* constants: whose files start the guest
	// services (SPEC "Guest init systems" says how each is told).
	Name string
	// Path, the absolute path /sbin/init resolves to ("" for none), and
	// Why, a few words on how Name was told, go into Guest.Message.
	Path, Why string
	// Inittab is the image's /etc/inittab, and HasInittab whether it has
	// one: InitBusybox's and InitSysvinit's guest files are that inittab,
	// edited (EditInittab).
	Inittab    []byte
	HasInittab bool
	// Flavor is RunitVoid or RunitDebian for InitRunit, OpenRCNoBoot or
	// "" for InitOpenRC: where their set-up goes.
	Flavor string
}

// Paths of the files that start the guest services under each init.
const (
	initBinPath     = "/usr/local/sbin/ext4pack-init"
	sbinInit        = "/sbin/init"
	sysinitPath     = "/usr/local/libexec/banger-sysinit"
	inittabPath     = "/etc/inittab"
	openrcInitDir   = "/etc/init.d"
	openrcLevelsDir = "/etc/runlevels"
	runitSvDir      = "/etc/sv/banger-vsock-agent"
	runitDefault    = "/etc/runit/runsvdir/default"
	voidCoreService = "/etc/runit/core-services/97-banger.sh"
	// debianRcSLink runs banger-sysinit in Debian runit's stage 1, which
	// starts every /etc/rcS.d/S* in name order; S10bootmisc.sh is the last
	// of a minimal system's, after the filesystems and the hostname.
	debianRcSLink = "/etc/rcS.d/S20banger-sysinit"
	// vsockPortFile tells ext4pack-init the agent's port when it is not
	// DefaultVsockPort: a kernel-started init has no arguments of its own.
	vsockPortFile = "/etc/banger/vsock-port"
	// growSwitch, while it exists, makes the guest grow / to its block
	// device at boot, under every init; ext4pack-init reads the same path.
	growSwitch   = "/etc/banger/grow-root"
	growUnit     = "banger-grow-root.service"
	localFsWants = unitDir + "/local-fs.target.wants"
)

// Guest is what make-bundle puts into one image: the files, the init they
// are for, and the line it prints about it.
type Guest struct {
	// Init is the manifest's guest_init: one of the Init* constants.
	Init string
	// Grows is the manifest's rootfs_grows: the guest grows / to its
	// block device at boot (Options.NoGrow unset).
	Grows bool
	// Files are the guest files, sorted by Path (see Files).
	Files []File
	// Message is one line for stderr naming the init found and how the
	// guest services start under it.
	Message string
}

// ForImage returns the guest files for img (its init, its distro, whether
// it has ip or busybox), with opts for the rest; opts.Init and
// opts.HasNetTool are img's. opts.Distro defaults to img.Distro. It is the
// one call make-bundle needs: inject Files, print Message, record Init.
func ForImage(img Image, opts Options) (Guest, error) {
	opts.Init = img.Init
	if opts.Distro == "" {
		opts.Distro = img.Distro
	}
	opts.HasNetTool = img.HasNetTool
	files, err := Files(opts)
	if err != nil {
		return Guest{}, err
	}
	init := guestInit(img.Init)
	return Guest{Init: init, Grows: !opts.NoGrow, Files: files, Message: message(img.Init, init)}, nil
}

// guestInit maps the image's init to the init the files are for: an image
// without init gets ext4pack-init, as does one that has it from an earlier
// make-bundle.
func guestInit(in InitSystem) string {
	if in.Name == InitNone {
		return InitExt4pack
	}
	return in.Name
}

// startsHow says, for the message, how the services start under each init.
var startsHow = map[string]string{
	InitSystemd:  "systemd units in /etc/systemd/system",
	InitOpenRC:   "OpenRC services in /etc/init.d, linked from /etc/runlevels (boot or sysinit, and default)",
	InitRunit:    "a runit service in /etc/sv, set-up in stage 1",
	InitBusybox:  "lines added to /etc/inittab",
	InitSysvinit: "lines added to /etc/inittab",
	InitExt4pack: "ext4pack-init as /sbin/init",
}

func message(in InitSystem, init string) string {
	var found []string
	if in.Path != "" {
		found = append(found, "/sbin/init is "+in.Path)
	}
	if in.Why != "" {
		found = append(found, in.Why)
	}
	return fmt.Sprintf("ext4pack: guest init: %s (%s); the guest services start as %s",
		init, strings.Join(found, ", "), startsHow[init])
}

// initFiles returns the files that start the guest services under opts'
// init, the common ones (agent, scripts, marker) aside.
func initFiles(opts Options, port uint32) ([]File, error) {
	portStr := strconv.FormatUint(uint64(port), 10)
	withPort := func(name string) []byte {
		return []byte(strings.ReplaceAll(string(asset(name)), vsockPortTemplate, portStr))
	}
	in := opts.Init
	switch guestInit(in) {
	case InitSystemd:
		files := []File{
			regular(unitDir+"/"+networkUnit, 0o644, asset(networkUnit)),
			regular(unitDir+"/"+agentUnit, 0o644, withPort(agentUnit)),
			regular(unitDir+"/"+firstBootUnit, 0o644, asset(firstBootUnit)),
		}
		// Absolute targets, as `systemctl enable` writes them.
		for _, unit := range []string{networkUnit, agentUnit, firstBootUnit} {
			files = append(files, symlink(wantsDir+"/"+unit, unitDir+"/"+unit))
		}
		return files, nil

	case InitOpenRC:
		// As rc-update writes them: absolute links in the runlevel's
		// directory. Set-up in its runlevel, the agent in default.
		setup := openrcSetupLevel(in)
		return []File{
			regular(openrcInitDir+"/banger-network", 0o755, asset("openrc/banger-network")),
			regular(openrcInitDir+"/banger-first-boot", 0o755, asset("openrc/banger-first-boot")),
			regular(openrcInitDir+"/banger-vsock-agent", 0o755, withPort("openrc/banger-vsock-agent")),
			symlink(openrcLevelsDir+"/"+setup+"/banger-network", openrcInitDir+"/banger-network"),
			symlink(openrcLevelsDir+"/"+setup+"/banger-first-boot", openrcInitDir+"/banger-first-boot"),
			symlink(openrcLevelsDir+"/default/banger-vsock-agent", openrcInitDir+"/banger-vsock-agent"),
		}, nil

	case InitRunit:
		files := []File{
			regular(sysinitPath, 0o755, asset("banger-sysinit.sh")),
			regular(runitSvDir+"/run", 0o755, withPort("runit/banger-vsock-agent.run")),
			// Enabled in the default runsvdir, never in /var/service or
			// /etc/service: those are links made at run time.
			symlink(runitDefault+"/banger-vsock-agent", runitSvDir),
		}
		if in.Flavor == RunitVoid {
			// Void's packages keep runsv's state in /run, as this does.
			files = append(files,
				symlink(runitSvDir+"/supervise", "/run/runit/supervise.banger-vsock-agent"),
				regular(voidCoreService, 0o644, asset("runit/97-banger.sh")))
		} else {
			// Debian's dh_runit does the same under its own name.
			files = append(files,
				symlink(runitSvDir+"/supervise", "/run/runit/supervise/banger-vsock-agent"),
				regular(openrcInitDir+"/banger-sysinit", 0o755, asset("runit/banger-sysinit.initd")),
				symlink(debianRcSLink, "../init.d/banger-sysinit"))
		}
		return files, nil

	case InitBusybox, InitSysvinit:
		tab, err := EditInittab(in.Inittab, in.HasInittab, in.Name == InitSysvinit, port)
		if err != nil {
			return nil, err
		}
		return []File{
			regular(sysinitPath, 0o755, asset("banger-sysinit.sh")),
			regular(inittabPath, 0o644, tab),
		}, nil

	case InitExt4pack:
		files := []File{symlink(sbinInit, initBinPath), devNull}
		if port != DefaultVsockPort {
			files = append(files, regular(vsockPortFile, 0o644, []byte(portStr+"\n")))
		}
		return files, nil
	}
	where := "/sbin/init is " + in.Path
	if in.Why != "" {
		where += " (" + in.Why + ")"
	}
	return nil, fmt.Errorf("agents: %s, an init ext4pack does not know how to start the guest services under "+
		"(it knows systemd, OpenRC, runit, busybox and sysvinit); pass --no-agents to bundle the image without them", where)
}

// growFiles returns what makes a guest under init grow / to its block device
// early at boot, besides ext4pack-init itself, the helper: the switch, and
// for systemd and OpenRC a service of their own. banger-sysinit (busybox,
// sysvinit, runit) and ext4pack-init as PID 1 look for the switch
// themselves.
func growFiles(in InitSystem) []File {
	files := []File{regular(growSwitch, 0o644, asset("grow-root"))}
	switch guestInit(in) {
	case InitSystemd:
		files = append(files,
			regular(unitDir+"/"+growUnit, 0o644, asset(growUnit)),
			symlink(localFsWants+"/"+growUnit, unitDir+"/"+growUnit))
	case InitOpenRC:
		files = append(files,
			regular(openrcInitDir+"/banger-grow-root", 0o755, asset("openrc/banger-grow-root")),
			symlink(openrcLevelsDir+"/"+openrcSetupLevel(in)+"/banger-grow-root", openrcInitDir+"/banger-grow-root"))
	}
	return files
}

// devNull is /dev/null for a guest whose PID 1 is ext4pack-init, where the
// image has none. A Go program's runtime opens /dev/null before main on
// the descriptors 0-2 the kernel left closed, which it does when it cannot
// open /dev/console; where it cannot open /dev/null either (no devtmpfs
// mounted on /dev by the kernel, and no node in the image), it exits, and
// PID 1 exiting panics the kernel. Once running, ext4pack-init mounts
// devtmpfs over it.
var devNull = File{Path: "/dev/null", Type: TypeCharDevice, Mode: 0o666, Major: 1, Minor: 3, IfMissing: true}

func symlink(p, target string) File {
	return File{Path: p, Type: TypeSymlink, Mode: symlinkPermissions, Target: target}
}

// openrcSetupLevel is the OpenRC runlevel the guest's set-up services go
// in: boot, or sysinit where the boot runlevel never runs (Debian's).
func openrcSetupLevel(in InitSystem) string {
	if in.Flavor == OpenRCNoBoot {
		return "sysinit"
	}
	return "boot"
}
