package boottest

import (
	"archive/tar"
	"encoding/json"
	"strings"
)

// The guest's network: an address from TEST-NET-1 (RFC 5737, 192.0.2.0/24,
// reserved for documentation), on a card whose only link is a qemu hub with
// no other port. Nothing the guest sends leaves qemu.
const (
	guestAddr     = "192.0.2.2"
	guestGateway  = "192.0.2.1"
	guestNetmask  = "255.255.255.0"
	guestPrefix   = 24
	guestHostname = "boottest"
	guestDNS      = "192.0.2.53"
	agentPort     = 1024
)

// How a guest's checker is started, by its init.
const (
	startUnit         = "systemd unit"
	startSysvInittab  = "sysvinit inittab once line"
	startBusyboxInit  = "busybox inittab once line"
	startRunitService = "runit service"
	startWorkload     = "ext4pack-init workload"
)

// Where a guest's base rootfs comes from.
const (
	baseRecipe     = "debootstrap"    // guest.recipe, cached
	baseBusybox    = "busybox-static" // Debian's busybox-static for the arch, nothing else
	baseDistroless = "distroless"     // no shell: passwd, group, the checker
	baseOpenRCBB   = "openrc+busybox" // the OpenRC rootfs, /sbin/init swapped for busybox
)

// guest is one column of the boot matrix (issue 14).
type guest struct {
	name     string
	arch     string // x86_64 or aarch64
	base     string // one of the base* constants
	recipe   recipe // for baseRecipe and baseOpenRCBB
	init     string // the guest_init make-bundle must find
	start    string // one of the start* constants
	poweroff string // the checker's config.Poweroff
	// user is the workload's User in image-config.json (ext4pack-init
	// guests); a non-root one cannot kill the agent or signal PID 1, so
	// the host sends ctrl-alt-del instead.
	user           string
	wantUID        uint32
	agentLinks     []string // image paths whose removal stops the agent: the negative control
	extraControls  []bootCase
	ext4packInitSh bool // ext4pack-init guest: check its console lines
	// embedded: the image is made by `make build`'s ext4pack with the
	// agent and ext4pack-init built into it, as users get them, not with
	// --agent-bin and --init-bin. At least one guest per arch.
	embedded bool
	// load runs the agent load test (the checker's agent-load) on the
	// reboot.
	load bool
}

// bootCase is one negative control: a variant of the test rootfs, or an
// edit of the built image, and the checks it must fail.
type bootCase struct {
	name     string
	v        variant
	remove   []string // image paths removed after make-bundle (see inittabAgentLine)
	wantFail []string
	// disk, when not 0, is the size the image's file is enlarged to
	// before the boot: the boot must grow / (growChecks).
	disk int64
	// noConsole boots with no device for /dev/console (vm.noConsole).
	noConsole bool
	// layered builds the image with make-bundle --image from the test
	// rootfs split into three OCI layers (layeredLayout, issue 13): a
	// positive boot, wantFail empty.
	layered bool
}

// matrix is the list, plus sysvinit on its own.
var matrix = []guest{
	{name: "systemd", arch: "x86_64", base: baseRecipe, recipe: systemdRecipe, init: "systemd", start: startUnit, poweroff: "exit",
		agentLinks: []string{"/etc/systemd/system/multi-user.target.wants/banger-vsock-agent.service"},
		extraControls: []bootCase{
			// The same rootfs as a three-layer container image (issue 13).
			{name: "positive-3-layer-image", layered: true},
			{
				// The setuid bit dropped in the tar: the image must carry
				// the tar's mode, and the checker must see it.
				name: "setuid-dropped",
				v: variant{edits: map[string]func(*tar.Header){
					setuidProbe: func(h *tar.Header) { h.Mode &^= 0o4000 },
				}},
				wantFail: []string{"setuid-kept"},
			},
			{
				// The first-boot unit never runs. It is masked through
				// /etc/systemd/system.control, which systemd reads before
				// /etc/systemd/system, since ext4pack replaces any link
				// the tar has at the unit's own place.
				name: "first-boot-masked",
				v: variant{symlinks: map[string]string{
					"etc/systemd/system.control/banger-first-boot.service": "/dev/null",
				}},
				wantFail: []string{"first-boot-marker", "first-boot-once"},
			},
		}},
	{name: "openrc-debian", arch: "x86_64", base: baseRecipe, recipe: openrcRecipe, init: "openrc", start: startSysvInittab,
		poweroff: "cmd:/sbin/poweroff", agentLinks: []string{"/etc/runlevels/default/banger-vsock-agent"}},
	{name: "runit-debian", arch: "x86_64", base: baseRecipe, recipe: runitRecipe, init: "runit", start: startRunitService,
		poweroff: "cmd:/sbin/poweroff", agentLinks: []string{"/etc/runit/runsvdir/default/banger-vsock-agent"}},
	{name: "busybox", arch: "x86_64", base: baseBusybox, init: "busybox", start: startBusyboxInit, poweroff: "signal:USR2",
		agentLinks: []string{inittabAgentLine},
		// The image is 64 MiB: a disk of 1 TiB takes the kernel past
		// the reserved GDT blocks, to meta_bg (issue 19).
		extraControls: []bootCase{{name: "positive-grow-1TiB", disk: hugeDisk}}},
	{name: "openrc-busybox", arch: "x86_64", base: baseOpenRCBB, recipe: openrcRecipe, init: "openrc", start: startBusyboxInit,
		poweroff: "signal:USR2"},
	{name: "sysvinit", arch: "x86_64", base: baseRecipe, recipe: sysvinitRecipe, init: "sysvinit", start: startSysvInittab,
		poweroff: "cmd:/sbin/poweroff", agentLinks: []string{inittabAgentLine}},
	{name: "no-init", arch: "x86_64", base: baseRecipe, recipe: minbaseRecipe, init: "ext4pack-init", start: startWorkload,
		poweroff: "signal:TERM", user: "root", wantUID: 0, ext4packInitSh: true,
		agentLinks: []string{"/usr/local/bin/banger-vsock-agent"}, embedded: true, load: true},
	{name: "distroless", arch: "x86_64", base: baseDistroless, init: "ext4pack-init", start: startWorkload,
		poweroff: "none", user: "nonroot", wantUID: 65532, ext4packInitSh: true,
		// No console: /dev/console cannot be opened, and the image's
		// /dev has no devtmpfs when ext4pack-init starts (issue 19).
		extraControls: []bootCase{{name: "positive-no-console", noConsole: true}}},
	{name: "busybox-aarch64", arch: "aarch64", base: baseBusybox, init: "busybox", start: startBusyboxInit, poweroff: "signal:USR2",
		embedded: true},
}

// enlargedDisk is the size a guest's disk is given on its first boot, sparse:
// a VM manager's `truncate -s 4G`, which the guest must grow / to.
const enlargedDisk = 4 << 30

// hugeDisk is the disk of the one guest that grows from 64 MiB to 1 TiB,
// past the 64 GiB that mke2fs's reserved GDT blocks reach: the kernel
// converts the filesystem to meta_bg on the way.
const hugeDisk = 1 << 40

// inittabAgentLine stands, in guest.agentLinks, for the agent's respawn
// line in /etc/inittab: the control takes that line out.
const inittabAgentLine = "inittab:respawn"

// workloadMarker is what an ext4pack-init guest's workload prints on
// standard output, which ext4pack-init sends to the console.
const workloadMarker = "BOOTTEST-WORKLOAD-MARKER the workload runs"

// workloadEnv is set in image-config.json's Env and checked by the workload.
const workloadEnv = "BOOTTEST_ENV=from-image-config"

// checkerConfig returns /etc/boottest.json for g.
func checkerConfig(g guest) []byte {
	c := map[string]any{
		"addr": guestAddr + "/24", "hostname": guestHostname, "dns": guestDNS, "port": agentPort,
		"poweroff": g.poweroff,
		// A non-root workload cannot kill the agent.
		"restart": g.user == "" || g.user == "root",
		"report":  map[string]string{"x86_64": "/dev/ttyS1", "aarch64": ""}[g.arch],
	}
	if g.init == "openrc" {
		c["diagnose"] = [][]string{{"rc-status", "--all"}, {"ls", "-l", "/run/openrc/started", "/etc/runlevels/boot", "/etc/runlevels/default"}}
	}
	if g.start == startWorkload {
		c["workload"] = map[string]any{"UID": g.wantUID, "GID": g.wantUID, "Dir": "/" + probeDir, "Env": workloadEnv, "Marker": workloadMarker}
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return append(b, '\n')
}

// imageConfig returns /etc/banger/image-config.json for an ext4pack-init
// guest: the checker is the workload, as the --image issue will write it
// from an OCI image's config.
func imageConfig(g guest) []byte {
	b, _ := json.Marshal(map[string]any{
		"User": g.user, "Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/bin", workloadEnv},
		"Entrypoint": []string{"/" + checkerPath}, "Cmd": nil, "WorkingDir": "/" + probeDir,
		"ExposedPorts": map[string]any{"8080/tcp": map[string]any{}},
	})
	return b
}

// guestVariant returns what g's rootfs gets on top of its base: the
// checker, its configuration and its start, the probes.
func guestVariant(g guest, checker []byte) variant {
	v := variant{
		add: []addEntry{
			{name: checkerPath, typ: tar.TypeReg, mode: 0o755, data: checker},
			{name: checkConfPath, typ: tar.TypeReg, mode: 0o644, data: checkerConfig(g)},
			{name: setuidProbe, typ: tar.TypeReg, mode: 0o4755, data: []byte("setuid probe\n")},
			{name: ownedProbe, typ: tar.TypeReg, mode: 0o640, uid: 1234, gid: 42, data: []byte("owned probe\n")},
			{name: probeDir, typ: tar.TypeDir, mode: 0o1777},
		},
		rewrite: map[string]func([]byte) []byte{},
	}
	appendLine := func(line string) func([]byte) []byte {
		return func(old []byte) []byte {
			s := string(old)
			if s != "" && !strings.HasSuffix(s, "\n") {
				s += "\n"
			}
			return []byte(s + "# ext4pack boot test: the checker, once the system is up.\n" + line + "\n")
		}
	}
	switch g.start {
	case startUnit:
		v.add = append(v.add,
			addEntry{name: checkUnitPath, typ: tar.TypeReg, mode: 0o644, data: checkUnit},
			addEntry{name: checkWantsPath, typ: tar.TypeSymlink, link: "/" + checkUnitPath})
	case startSysvInittab:
		// After the runlevel's wait line, which sysvinit lets finish first.
		v.rewrite["etc/inittab"] = appendLine("bt:2345:once:/" + checkerPath)
	case startBusyboxInit:
		// busybox runs once lines after every sysinit and wait line.
		if g.base == baseOpenRCBB {
			// Alpine's OpenRC remounts / read-only in its shutdown
			// runlevel (mount-ro), which its inittab enters; Debian's
			// keeps that in "off", which Alpine's inittab never enters,
			// so the hybrid does it itself, after OpenRC.
			tab := appendLine("::once:/" + checkerPath)(alpineInittab)
			tab = append(tab, "# As Alpine's mount-ro would, at shutdown.\n::shutdown:/bin/mount -o remount,ro /\n"...)
			v.add = append(v.add, addEntry{name: "etc/inittab", typ: tar.TypeReg, mode: 0o644, data: tab})
		} else {
			v.rewrite["etc/inittab"] = appendLine("::once:/" + checkerPath)
		}
	case startRunitService:
		v.add = append(v.add,
			addEntry{name: "etc/sv/boottest-check/run", typ: tar.TypeReg, mode: 0o755,
				data: []byte("#!/bin/sh\n# ext4pack boot test: the checker, as a runit service.\nexec /" + checkerPath + " 2>&1\n")},
			addEntry{name: "etc/runit/runsvdir/default/boottest-check", typ: tar.TypeSymlink, link: "/etc/sv/boottest-check"})
	case startWorkload:
		v.add = append(v.add, addEntry{name: "etc/banger/image-config.json", typ: tar.TypeReg, mode: 0o644, data: imageConfig(g)})
	}
	return v
}
