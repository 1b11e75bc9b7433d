package tarflat

import (
	"testing"
)

// Inittabs as the distros ship them, cut to the lines that matter.
const (
	alpineInittab = "# /etc/inittab\n\n::sysinit:/sbin/openrc sysinit\n::sysinit:/sbin/openrc boot\n::wait:/sbin/openrc default\n" +
		"tty1::respawn:/sbin/getty 38400 tty1\n::ctrlaltdel:/sbin/reboot\n::shutdown:/sbin/openrc shutdown\n"
	debianInittab   = "id:2:initdefault:\nsi::sysinit:/etc/init.d/rcS\nl2:2:wait:/etc/init.d/rc 2\n1:2345:respawn:/sbin/getty 38400 tty1\n"
	debianOpenRCrcS = "#!/bin/sh\n# comment: /sbin/openrc\nexec /sbin/openrc sysinit\n"
	sysvRcS         = "#!/bin/sh\nexec /etc/init.d/rc S\n"
)

// Usr-merged parts of a Debian tree.
var usrMerged = []tarEntry{
	dir("usr/sbin"), dir("usr/bin"), dir("usr/lib"),
	symlink("sbin", "usr/sbin"), symlink("bin", "usr/bin"), symlink("lib", "usr/lib"),
}

func with(base []tarEntry, more ...tarEntry) []tarEntry {
	return append(append([]tarEntry(nil), base...), more...)
}

// TestInitSystem is SPEC "Guest init systems": how each init is told.
func TestInitSystem(t *testing.T) {
	bb := file("bin/busybox", 0o755, x86)
	openrc := file("sbin/openrc", 0o755, x86)
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		want    string // InitSystem.Name
		path    string // InitSystem.Path
		flavor  string
		netTool string
	}{
		{"no init: a container image", []tarEntry{file("bin/sh", 0o755, x86)}, InitNone, "", "", ""},
		{"dangling /sbin/init", []tarEntry{symlink("sbin/init", "/lib/systemd/systemd")}, InitNone, "", "", ""},
		{"systemd, usr-merged", with(usrMerged,
			file("usr/lib/systemd/systemd", 0o755, x86), symlink("usr/sbin/init", "../lib/systemd/systemd"),
			file("usr/sbin/ip", 0o755, x86)),
			InitSystemd, "/usr/lib/systemd/systemd", "", "ip"},
		{"systemd, absolute link through /lib", with(usrMerged,
			file("usr/lib/systemd/systemd", 0o755, x86), symlink("usr/sbin/init", "/lib/systemd/systemd")),
			InitSystemd, "/usr/lib/systemd/systemd", "", ""},
		{"Alpine: busybox with OpenRC", []tarEntry{bb, symlink("sbin/init", "/bin/busybox"), openrc,
			file("etc/inittab", 0o644, []byte(alpineInittab))},
			InitOpenRC, "/bin/busybox", "", "busybox"},
		{"Alpine minirootfs: its inittab calls a missing openrc", []tarEntry{bb, symlink("sbin/init", "/bin/busybox"),
			file("etc/inittab", 0o644, []byte(alpineInittab))},
			InitBusybox, "/bin/busybox", "", "busybox"},
		{"busybox without inittab", []tarEntry{bb, symlink("sbin/init", "../bin/busybox")},
			InitBusybox, "/bin/busybox", "", "busybox"},
		{"busybox as a hardlink named init", []tarEntry{bb, hardlink("sbin/init", "bin/busybox")},
			InitBusybox, "/sbin/init", "", "busybox"},
		{"openrc-init", []tarEntry{file("sbin/openrc-init", 0o755, x86), symlink("sbin/init", "openrc-init")},
			InitOpenRC, "/sbin/openrc-init", "", ""},
		{"Debian sysvinit", with(usrMerged, file("usr/sbin/init", 0o755, x86),
			file("etc/inittab", 0o644, []byte(debianInittab)), file("etc/init.d/rcS", 0o755, []byte(sysvRcS))),
			InitSysvinit, "/usr/sbin/init", "", ""},
		{"Debian sysvinit with OpenRC", with(usrMerged, file("usr/sbin/init", 0o755, x86), file("usr/sbin/openrc", 0o755, x86),
			file("etc/inittab", 0o644, []byte(debianInittab)), file("etc/init.d/rcS", 0o755, []byte(debianOpenRCrcS))),
			InitOpenRC, "/usr/sbin/init", OpenRCNoBoot, ""},
		{"sysvinit whose inittab runs openrc boot", with(usrMerged, file("usr/sbin/init", 0o755, x86), file("usr/sbin/openrc", 0o755, x86),
			file("etc/inittab", 0o644, []byte("si::sysinit:/sbin/openrc sysinit\nrc::bootwait:/sbin/openrc boot\n"))),
			InitOpenRC, "/usr/sbin/init", "", ""},
		{"rcS naming an openrc that is not there", with(usrMerged, file("usr/sbin/init", 0o755, x86),
			file("etc/inittab", 0o644, []byte(debianInittab)), file("etc/init.d/rcS", 0o755, []byte(debianOpenRCrcS))),
			InitSysvinit, "/usr/sbin/init", "", ""},
		{"a plain init without inittab is not sysvinit", []tarEntry{file("sbin/init", 0o755, x86)},
			InitUnknown, "/sbin/init", "", ""},
		{"Debian runit-init", with(usrMerged, file("usr/lib/runit/runit-init", 0o755, x86),
			symlink("usr/sbin/init", "/lib/runit/runit-init"), dir("etc/runit/runsvdir/default")),
			InitRunit, "/usr/lib/runit/runit-init", RunitDebian, ""},
		{"Void runit", []tarEntry{dir("usr/bin"), symlink("sbin", "usr/bin"), file("usr/bin/runit-init", 0o755, x86),
			symlink("usr/bin/init", "runit-init"), dir("etc/runit/core-services")},
			InitRunit, "/usr/bin/runit-init", RunitVoid, ""},
		{"ext4pack-init from an earlier make-bundle", []tarEntry{file("usr/local/sbin/ext4pack-init", 0o755, x86),
			symlink("sbin/init", "/usr/local/sbin/ext4pack-init")},
			InitExt4packInit, "/usr/local/sbin/ext4pack-init", "", ""},
		{"something else", []tarEntry{file("usr/bin/tini", 0o755, x86), symlink("sbin/init", "/usr/bin/tini")},
			InitUnknown, "/usr/bin/tini", "", ""},
		{"a directory", []tarEntry{dir("sbin/init")}, InitUnknown, "/sbin/init", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := copyTar(t, tc.entries...)
			in := got.Init
			if in.Name != tc.want || in.Path != tc.path || in.Flavor != tc.flavor || got.NetTool != tc.netTool {
				t.Errorf("got %q at %q flavor %q net %q (%s), want %q at %q flavor %q net %q",
					in.Name, in.Path, in.Flavor, got.NetTool, in.Why, tc.want, tc.path, tc.flavor, tc.netTool)
			}
		})
	}
}

// TestInitSystemInittab: the inittab is handed on, through a symlink, and
// told apart from an empty one.
func TestInitSystemInittab(t *testing.T) {
	got := copyTar(t, file("bin/busybox", 0o755, x86), symlink("sbin/init", "/bin/busybox"),
		file("usr/share/inittab", 0o644, []byte(alpineInittab)), symlink("etc/inittab", "../usr/share/inittab"))
	if !got.Init.HasInittab || string(got.Init.Inittab) != alpineInittab {
		t.Errorf("inittab %v %q", got.Init.HasInittab, got.Init.Inittab)
	}
	got = copyTar(t, file("bin/busybox", 0o755, x86), symlink("sbin/init", "/bin/busybox"), file("etc/inittab", 0o644, nil))
	if !got.Init.HasInittab || len(got.Init.Inittab) != 0 {
		t.Errorf("empty inittab: %v %q", got.Init.HasInittab, got.Init.Inittab)
	}
}
