package agents

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
)

// common are the files every init gets.
var common = []string{
	"/etc/modules-load.d/banger-vsock.conf",
	"/usr/local/bin/banger-vsock-agent",
	"/usr/local/libexec/banger-first-boot",
	"/usr/local/libexec/banger-network-bootstrap",
	"/var/lib/banger/first-boot-pending",
}

const alpineInittab = "# /etc/inittab\n\n::sysinit:/sbin/openrc sysinit\n::sysinit:/sbin/openrc boot\n::wait:/sbin/openrc default\n" +
	"tty1::respawn:/sbin/getty 38400 tty1\n::ctrlaltdel:/sbin/reboot\n::shutdown:/sbin/openrc shutdown\n"

// charNull stands, in TestForImage's extra files, for /dev/null.
const charNull = "char 1:3"

const debianInittab = "id:2:initdefault:\nsi::sysinit:/etc/init.d/rcS\nl2:2:wait:/etc/init.d/rc 2\n1:2345:respawn:/sbin/getty --noclear 38400 tty1\n"

// TestForImage is SPEC "Guest init systems": each init gets the files that
// start the services its own way, and make-bundle is told what to print and
// record. The growth's files are TestGrowFiles's.
func TestForImage(t *testing.T) {
	agent, initBin := staticAgent(t, ArchX86_64), staticAgent(t, ArchX86_64)
	for _, tc := range []struct {
		name    string
		img     Image
		init    string
		extra   map[string]string // path -> symlink target, or "" for a regular file
		message string
	}{
		{"systemd", Image{Init: systemd, HasNetTool: true}, InitSystemd, map[string]string{
			"/etc/systemd/system/banger-first-boot.service":                          "",
			"/etc/systemd/system/banger-network.service":                             "",
			"/etc/systemd/system/banger-vsock-agent.service":                         "",
			"/etc/systemd/system/multi-user.target.wants/banger-first-boot.service":  "/etc/systemd/system/banger-first-boot.service",
			"/etc/systemd/system/multi-user.target.wants/banger-network.service":     "/etc/systemd/system/banger-network.service",
			"/etc/systemd/system/multi-user.target.wants/banger-vsock-agent.service": "/etc/systemd/system/banger-vsock-agent.service",
		}, "systemd (/sbin/init is /usr/lib/systemd/systemd)"},
		{"systemd without ip or busybox gets ext4pack-init for the network", Image{Init: systemd}, InitSystemd, map[string]string{
			"/etc/systemd/system/banger-first-boot.service":                          "",
			"/etc/systemd/system/banger-network.service":                             "",
			"/etc/systemd/system/banger-vsock-agent.service":                         "",
			"/etc/systemd/system/multi-user.target.wants/banger-first-boot.service":  "/etc/systemd/system/banger-first-boot.service",
			"/etc/systemd/system/multi-user.target.wants/banger-network.service":     "/etc/systemd/system/banger-network.service",
			"/etc/systemd/system/multi-user.target.wants/banger-vsock-agent.service": "/etc/systemd/system/banger-vsock-agent.service",
			"/usr/local/sbin/ext4pack-init":                                          "",
		}, "systemd"},
		{"openrc", Image{HasNetTool: true, Init: InitSystem{Name: InitOpenRC, Path: "/bin/busybox",
			Why: "/etc/inittab runs /sbin/openrc", Inittab: []byte(alpineInittab), HasInittab: true}}, InitOpenRC, map[string]string{
			"/etc/init.d/banger-first-boot":             "",
			"/etc/init.d/banger-network":                "",
			"/etc/init.d/banger-vsock-agent":            "",
			"/etc/runlevels/boot/banger-first-boot":     "/etc/init.d/banger-first-boot",
			"/etc/runlevels/boot/banger-network":        "/etc/init.d/banger-network",
			"/etc/runlevels/default/banger-vsock-agent": "/etc/init.d/banger-vsock-agent",
		}, "openrc (/sbin/init is /bin/busybox, /etc/inittab runs /sbin/openrc)"},
		{"openrc, Debian", Image{HasNetTool: true, Init: InitSystem{Name: InitOpenRC, Path: "/usr/sbin/init",
			Flavor: OpenRCNoBoot, Why: "sysvinit, /etc/init.d/rcS runs /sbin/openrc"}}, InitOpenRC, map[string]string{
			"/etc/init.d/banger-first-boot":             "",
			"/etc/init.d/banger-network":                "",
			"/etc/init.d/banger-vsock-agent":            "",
			"/etc/runlevels/sysinit/banger-first-boot":  "/etc/init.d/banger-first-boot",
			"/etc/runlevels/sysinit/banger-network":     "/etc/init.d/banger-network",
			"/etc/runlevels/default/banger-vsock-agent": "/etc/init.d/banger-vsock-agent",
		}, "openrc (/sbin/init is /usr/sbin/init, sysvinit, /etc/init.d/rcS runs /sbin/openrc)"},
		{"runit, Debian", Image{HasNetTool: true, Init: InitSystem{Name: InitRunit, Flavor: RunitDebian,
			Path: "/usr/lib/runit/runit-init"}}, InitRunit, map[string]string{
			"/etc/init.d/banger-sysinit":                     "",
			"/etc/rcS.d/S20banger-sysinit":                   "../init.d/banger-sysinit",
			"/etc/runit/runsvdir/default/banger-vsock-agent": "/etc/sv/banger-vsock-agent",
			"/etc/sv/banger-vsock-agent/run":                 "",
			"/etc/sv/banger-vsock-agent/supervise":           "/run/runit/supervise/banger-vsock-agent",
			"/usr/local/libexec/banger-sysinit":              "",
		}, "runit"},
		{"runit, Void", Image{HasNetTool: true, Init: InitSystem{Name: InitRunit, Flavor: RunitVoid,
			Path: "/usr/bin/runit-init"}}, InitRunit, map[string]string{
			"/etc/runit/core-services/97-banger.sh":          "",
			"/etc/runit/runsvdir/default/banger-vsock-agent": "/etc/sv/banger-vsock-agent",
			"/etc/sv/banger-vsock-agent/run":                 "",
			"/etc/sv/banger-vsock-agent/supervise":           "/run/runit/supervise.banger-vsock-agent",
			"/usr/local/libexec/banger-sysinit":              "",
		}, "runit"},
		{"busybox", Image{HasNetTool: true, Init: InitSystem{Name: InitBusybox, Path: "/bin/busybox",
			Inittab: []byte(alpineInittab), HasInittab: true}}, InitBusybox, map[string]string{
			"/etc/inittab":                      "",
			"/usr/local/libexec/banger-sysinit": "",
		}, "busybox"},
		{"sysvinit", Image{HasNetTool: true, Init: InitSystem{Name: InitSysvinit, Path: "/usr/sbin/init",
			Inittab: []byte(debianInittab), HasInittab: true}}, InitSysvinit, map[string]string{
			"/etc/inittab":                      "",
			"/usr/local/libexec/banger-sysinit": "",
		}, "sysvinit"},
		{"no init", Image{Init: InitSystem{Why: "no /sbin/init"}}, InitExt4pack, map[string]string{
			"/dev/null":                     charNull,
			"/sbin/init":                    "/usr/local/sbin/ext4pack-init",
			"/usr/local/sbin/ext4pack-init": "",
		}, "ext4pack-init (no /sbin/init)"},
		{"ext4pack-init from an earlier make-bundle", Image{HasNetTool: true, Init: InitSystem{
			Name: InitExt4pack, Path: "/usr/local/sbin/ext4pack-init"}}, InitExt4pack, map[string]string{
			"/dev/null":                     charNull,
			"/sbin/init":                    "/usr/local/sbin/ext4pack-init",
			"/usr/local/sbin/ext4pack-init": "",
		}, "ext4pack-init"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ForImage(tc.img, Options{Arch: ArchX86_64, AgentBin: agent, InitBin: initBin, NoGrow: true})
			if err != nil {
				t.Fatal(err)
			}
			if g.Init != tc.init {
				t.Errorf("Init %q, want %q", g.Init, tc.init)
			}
			if !strings.HasPrefix(g.Message, "ext4pack: guest init: "+tc.message) || strings.Contains(g.Message, "\n") {
				t.Errorf("message %q, want one line starting %q", g.Message, "ext4pack: guest init: "+tc.message)
			}
			var got, want []string
			for _, f := range g.Files {
				got = append(got, f.Path)
				if f.Uid != 0 || f.Gid != 0 {
					t.Errorf("%s is owned by %d:%d", f.Path, f.Uid, f.Gid)
				}
				target, ok := tc.extra[f.Path]
				switch {
				case slices.Contains(common, f.Path):
				case !ok:
				case target == charNull:
					if f.Type != TypeCharDevice || f.Major != 1 || f.Minor != 3 || f.Mode != 0o666 || !f.IfMissing {
						t.Errorf("%s: %+v, want /dev/null (char 1:3, 0666), written only where the image has none", f.Path, f)
					}
				case target != "" && (f.Type != TypeSymlink || f.Target != target):
					t.Errorf("%s: %v -> %q, want a symlink to %q", f.Path, f.Type, f.Target, target)
				case target == "" && f.Type != TypeRegular:
					t.Errorf("%s: %v, want a regular file", f.Path, f.Type)
				}
				if bytes.Contains(f.Data, []byte(vsockPortTemplate)) {
					t.Errorf("%s still holds %s", f.Path, vsockPortTemplate)
				}
			}
			want = append(want, common...)
			for p := range tc.extra {
				want = append(want, p)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("files:\ngot  %q\nwant %q", got, want)
			}
		})
	}
}

func TestForImageUnknownInit(t *testing.T) {
	_, err := ForImage(Image{Init: InitSystem{Name: InitUnknown, Path: "/usr/bin/tini"}},
		Options{Arch: ArchX86_64, AgentBin: staticAgent(t, ArchX86_64), InitBin: staticAgent(t, ArchX86_64)})
	if err == nil || !strings.Contains(err.Error(), "/sbin/init is /usr/bin/tini") || !strings.Contains(err.Error(), "--no-agents") {
		t.Fatalf("err = %v", err)
	}
}

func TestForImageNeedsInitBin(t *testing.T) {
	if Embedded {
		t.Skip("this build embeds ext4pack-init")
	}
	_, err := ForImage(Image{}, Options{Arch: ArchX86_64, AgentBin: staticAgent(t, ArchX86_64)})
	if err != ErrNoInit {
		t.Fatalf("err = %v, want ErrNoInit", err)
	}
	// Growth needs the helper in a guest that has an init and ip.
	_, err = ForImage(Image{Init: systemd, HasNetTool: true}, Options{Arch: ArchX86_64, AgentBin: staticAgent(t, ArchX86_64)})
	if err != ErrNoInit || !strings.Contains(err.Error(), "--no-grow") {
		t.Fatalf("err = %v, want ErrNoInit naming --no-grow", err)
	}
	if _, err = ForImage(Image{Init: systemd, HasNetTool: true}, Options{Arch: ArchX86_64, AgentBin: staticAgent(t, ArchX86_64), NoGrow: true}); err != nil {
		t.Fatalf("without growth: %v", err)
	}
	_, err = ForImage(Image{}, Options{Arch: ArchX86_64, AgentBin: staticAgent(t, ArchX86_64), InitBin: staticAgent(t, ArchAarch64)})
	if err == nil || !strings.Contains(err.Error(), "ext4pack-init for x86_64 is built for EM_AARCH64") {
		t.Fatalf("err = %v", err)
	}
}

// TestVsockPortUnderEveryInit: a port other than the default reaches the
// agent's command line under every init.
func TestVsockPortUnderEveryInit(t *testing.T) {
	for _, in := range []InitSystem{
		systemd,
		{Name: InitOpenRC},
		{Name: InitRunit, Flavor: RunitDebian},
		{Name: InitBusybox},
		{Name: InitSysvinit, Inittab: []byte(debianInittab), HasInittab: true},
		{},
	} {
		files, err := Files(Options{Arch: ArchX86_64, AgentBin: staticAgent(t, ArchX86_64), InitBin: staticAgent(t, ArchX86_64),
			Init: in, HasNetTool: true, VsockPort: 52000})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range files {
			found = found || bytes.Contains(f.Data, []byte("--port=52000")) || (f.Path == vsockPortFile && string(f.Data) == "52000\n")
		}
		if !found {
			t.Errorf("%q: no file gives the agent port 52000", in.Name)
		}
	}
}

func TestEditInittab(t *testing.T) {
	const bbAgent = "::respawn:/usr/local/bin/banger-vsock-agent --port=1024 --user=65534:65534"
	for _, tc := range []struct {
		name             string
		old              string
		exists, sysvinit bool
		want             []string // lines, in order, among the result's
		sysinitAfter     string   // the line our sysinit line must follow directly, after its comment
	}{
		{"Alpine", alpineInittab, true, false,
			[]string{"::sysinit:/sbin/openrc sysinit", "::sysinit:/sbin/openrc boot", sysinitComment,
				"::sysinit:/usr/local/libexec/banger-sysinit", "::wait:/sbin/openrc default", "::shutdown:/sbin/openrc shutdown",
				agentComment, bbAgent},
			"::sysinit:/sbin/openrc boot"},
		{"busybox without inittab", "", false, false,
			[]string{"::sysinit:/etc/init.d/rcS", sysinitComment, "::sysinit:/usr/local/libexec/banger-sysinit",
				"::askfirst:/bin/sh", "::ctrlaltdel:/sbin/reboot", "::shutdown:/bin/umount -a -r", "::restart:/sbin/init",
				agentComment, bbAgent},
			"::sysinit:/etc/init.d/rcS"},
		{"busybox with an empty inittab", "", true, false,
			[]string{sysinitComment, "::sysinit:/usr/local/libexec/banger-sysinit", agentComment, bbAgent}, ""},
		{"Debian sysvinit", debianInittab, true, true,
			[]string{"id:2:initdefault:", "si::sysinit:/etc/init.d/rcS", sysinitComment, "bsi::sysinit:/usr/local/libexec/banger-sysinit",
				"l2:2:wait:/etc/init.d/rc 2", "1:2345:respawn:/sbin/getty --noclear 38400 tty1", agentComment,
				"bva:2345:respawn:/usr/local/bin/banger-vsock-agent --port=1024 --user=65534:65534"},
			"si::sysinit:/etc/init.d/rcS"},
		{"no final newline, CRLF", "::sysinit:/etc/init.d/rcS\r\n::respawn:/sbin/getty 115200 ttyS0", true, false,
			[]string{"::sysinit:/etc/init.d/rcS", sysinitComment, "::sysinit:/usr/local/libexec/banger-sysinit",
				"::respawn:/sbin/getty 115200 ttyS0", agentComment, bbAgent}, "::sysinit:/etc/init.d/rcS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			once, err := EditInittab([]byte(tc.old), tc.exists, tc.sysvinit, DefaultVsockPort)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(once), "\n"), "\n")
			// Every line of the old inittab is kept, and ours are in place.
			var kept []string
			for _, l := range got {
				if !isOurInittabLine(l) {
					kept = append(kept, l)
				}
			}
			if tc.exists {
				old := strings.Split(strings.TrimSuffix(strings.ReplaceAll(tc.old, "\r\n", "\n"), "\n"), "\n")
				if tc.old == "" {
					old = nil
				}
				if !slices.Equal(kept, old) {
					t.Errorf("kept lines\n%q\nwant\n%q", kept, old)
				}
			}
			i := 0
			for _, l := range got {
				if i < len(tc.want) && l == tc.want[i] {
					i++
				}
			}
			if i < len(tc.want) {
				t.Errorf("lines %q not found in order in\n%s", tc.want[i:], once)
			}
			if tc.sysinitAfter != "" {
				j := slices.Index(got, sysinitComment)
				if j < 1 || got[j-1] != tc.sysinitAfter {
					t.Errorf("our sysinit line does not follow %q:\n%s", tc.sysinitAfter, once)
				}
			}
			if !strings.HasSuffix(string(once), "\n") {
				t.Error("no final newline")
			}
			// Idempotent: a second make-bundle over the result changes
			// nothing, and a different port replaces our line.
			twice, err := EditInittab(once, true, tc.sysvinit, DefaultVsockPort)
			if err != nil || !bytes.Equal(once, twice) {
				t.Errorf("editing twice differs (%v):\n%s\nthen\n%s", err, once, twice)
			}
			other, err := EditInittab(once, true, tc.sysvinit, 2000)
			if err != nil || bytes.Count(other, []byte("banger-vsock-agent")) != 1 || !bytes.Contains(other, []byte("--port=2000")) {
				t.Errorf("a new port does not replace the agent line (%v):\n%s", err, other)
			}
		})
	}
	if _, err := EditInittab(nil, false, true, DefaultVsockPort); err == nil {
		t.Error("sysvinit without an inittab: no error")
	}
}

// TestGrowFiles is SPEC "Growing to the disk": unless NoGrow, every guest
// gets ext4pack-init as the helper and the switch, and systemd and OpenRC a
// service of their own that runs it early; banger-sysinit and ext4pack-init
// as PID 1 read the switch themselves. NoGrow leaves all of it out.
func TestGrowFiles(t *testing.T) {
	openrcDebian := InitSystem{Name: InitOpenRC, Flavor: OpenRCNoBoot}
	for _, tc := range []struct {
		name  string
		init  InitSystem
		extra map[string]string // path -> symlink target, or "" for a regular file
	}{
		{"systemd", systemd, map[string]string{
			"/etc/systemd/system/banger-grow-root.service":                       "",
			"/etc/systemd/system/local-fs.target.wants/banger-grow-root.service": "/etc/systemd/system/banger-grow-root.service",
		}},
		{"openrc", InitSystem{Name: InitOpenRC}, map[string]string{
			"/etc/init.d/banger-grow-root":         "",
			"/etc/runlevels/boot/banger-grow-root": "/etc/init.d/banger-grow-root",
		}},
		{"openrc, Debian", openrcDebian, map[string]string{
			"/etc/init.d/banger-grow-root":            "",
			"/etc/runlevels/sysinit/banger-grow-root": "/etc/init.d/banger-grow-root",
		}},
		{"runit", InitSystem{Name: InitRunit, Flavor: RunitDebian}, nil},
		{"busybox", InitSystem{Name: InitBusybox}, nil},
		{"sysvinit", InitSystem{Name: InitSysvinit, Inittab: []byte(debianInittab), HasInittab: true}, nil},
		{"ext4pack-init", InitSystem{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Arch: ArchX86_64, AgentBin: staticAgent(t, ArchX86_64), InitBin: staticAgent(t, ArchX86_64),
				Init: tc.init, HasNetTool: true}
			with, err := Files(opts)
			if err != nil {
				t.Fatal(err)
			}
			opts.NoGrow = true
			without, err := Files(opts)
			if err != nil {
				t.Fatal(err)
			}
			added := map[string]File{}
			for p, f := range byPath(with) {
				if _, ok := byPath(without)[p]; !ok {
					added[p] = f
				}
			}
			want := map[string]string{growSwitch: ""}
			if guestInit(tc.init) != InitExt4pack {
				want[initBinPath] = "" // ext4pack-init guests have it anyway
			}
			for p, target := range tc.extra {
				want[p] = target
			}
			if len(added) != len(want) {
				t.Errorf("growth adds %d files, want %d: %v", len(added), len(want), slices.Sorted(maps.Keys(added)))
			}
			for p, target := range want {
				f, ok := added[p]
				switch {
				case !ok:
					t.Errorf("growth does not add %s", p)
				case target != "" && (f.Type != TypeSymlink || f.Target != target):
					t.Errorf("%s: %v -> %q, want a symlink to %q", p, f.Type, f.Target, target)
				case target == "" && f.Type != TypeRegular:
					t.Errorf("%s: %v, want a regular file", p, f.Type)
				}
			}
			if sw := added[growSwitch]; sw.Mode != 0o644 || !bytes.Contains(sw.Data, []byte("Remove it")) {
				t.Errorf("switch: mode %o, %q", sw.Mode, sw.Data)
			}
			if h, ok := added[initBinPath]; ok && h.Mode != 0o755 {
				t.Errorf("helper mode %o", h.Mode)
			}
			for p, f := range added {
				if strings.HasSuffix(p, "banger-grow-root") || strings.HasSuffix(p, ".service") {
					if f.Type == TypeRegular && !bytes.Contains(f.Data, []byte("/usr/local/sbin/ext4pack-init grow")) {
						t.Errorf("%s does not run the helper:\n%s", p, f.Data)
					}
				}
			}
			g, err := ForImage(Image{Init: tc.init, HasNetTool: true}, opts)
			if err != nil || g.Grows {
				t.Errorf("ForImage with NoGrow: Grows %v, %v", g.Grows, err)
			}
			opts.NoGrow = false
			if g, err := ForImage(Image{Init: tc.init, HasNetTool: true}, opts); err != nil || !g.Grows {
				t.Errorf("ForImage: Grows %v, %v", g.Grows, err)
			}
		})
	}
}

// TestGrowUnit: the systemd unit runs early, after / is read-write, only
// while the switch is there, and shows its line on the console.
func TestGrowUnit(t *testing.T) {
	unit := string(asset(growUnit))
	for _, want := range []string{
		"DefaultDependencies=no\n", "ConditionPathExists=/etc/banger/grow-root\n",
		"After=systemd-remount-fs.service\n", "Before=local-fs.target shutdown.target\n",
		"Type=oneshot\n", "ExecStart=/usr/local/sbin/ext4pack-init grow\n",
		"StandardError=journal+console\n", "WantedBy=local-fs.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("%s lacks %q", growUnit, want)
		}
	}
}
