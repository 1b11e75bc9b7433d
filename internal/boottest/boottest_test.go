package boottest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests need no VM, root or network: they cover the harness's own
// logic, so that a broken parser cannot make the boot test pass.

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestRunDecision(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		run  bool
	}{
		{"unset", nil, false},
		{"asked", map[string]string{envRun: "1"}, true},
		{"ci", map[string]string{envCI: "true"}, true},
		{"ci-turned-off", map[string]string{envCI: "true", envRun: "0"}, false},
		{"bad-value", map[string]string{envRun: "yes"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, why := runDecision(envOf(tc.env))
			if run != tc.run {
				t.Fatalf("run = %v (%s), want %v", run, why, tc.run)
			}
			if !run && why == "" {
				t.Fatal("a skip must say why")
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	c, err := loadConfig(envOf(map[string]string{envCache: dir, envTimeout: "90s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.cacheDir != dir || c.bootTimeout != 90*time.Second {
		t.Fatalf("got %+v", c)
	}
	c, err = loadConfig(envOf(map[string]string{envCache: dir}))
	if err != nil || c.bootTimeout != 0 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, bad := range []map[string]string{
		{envCache: dir, envTimeout: "ten minutes"},
		{envCache: dir, envTimeout: "-1s"},
	} {
		if _, err := loadConfig(envOf(bad)); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestHostHasVirtualization(t *testing.T) {
	for _, tc := range []struct {
		cpuinfo string
		want    bool
	}{
		{"processor\t: 0\nflags\t\t: fpu vme de pse vmx sse\n", true},
		{"flags\t\t: fpu svm\n", true},
		{"flags\t\t: fpu vme de pse sse hypervisor\n", false},
		// A flag that only contains the name is not it.
		{"flags\t\t: vmxe svmx\n", false},
		{"", false},
	} {
		if got := hostHasVirtualization(tc.cpuinfo); got != tc.want {
			t.Errorf("%q: got %v, want %v", tc.cpuinfo, got, tc.want)
		}
	}
}

func TestDebianMirror(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []aptSourceFile
		want  string
	}{
		{"one-line", []aptSourceFile{{"/etc/apt/sources.list", "# comment\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian/ bookworm main\n"}},
			"http://m.example/debian"},
		{"deb822", []aptSourceFile{{"/etc/apt/sources.list.d/debian.sources",
			"Types: deb\n# http://snapshot.example/\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n" +
				"Types: deb deb-src\nURIs: mirror+file:/etc/apt/mirrors.txt\n http://m.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n" +
				"Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"}},
			"http://m.example/debian"},
		{"suite-must-match-exactly", []aptSourceFile{
			{"/etc/apt/sources.list", "deb http://security.example/debian-security bookworm-security main\n"},
			{"/etc/apt/sources.list.d/x.list", "deb https://m.example/debian bookworm main\n"}},
			"https://m.example/debian"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := debianMirror(tc.files, "bookworm")
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if got, err := debianMirror([]aptSourceFile{{"/etc/apt/sources.list", "deb http://m.example/debian trixie main\n"}}, "bookworm"); err == nil {
		t.Fatalf("no bookworm source, yet got %q", got)
	}
}

func TestReadAptSourcesIgnoresOtherSuffixes(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "sources.list.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"a.list.disabled-by-farm": "deb http://disabled.example/debian bookworm main\n",
		"b.sources":               "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\n",
	} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := readAptSources(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := debianMirror(files, "bookworm"); err != nil || got != "http://m.example/debian" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestParseAptDepends(t *testing.T) {
	out := "linux-image-cloud-amd64\n  Depends: <linux-image-virtual>\n |Depends: linux-image-6.1.0-56-cloud-amd64\n  Depends: foo\n"
	got, err := parseAptDepends(out, "linux-image-")
	if err != nil || got != "linux-image-6.1.0-56-cloud-amd64" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := parseAptDepends("linux-image-cloud-amd64\n", "linux-image-"); err == nil {
		t.Fatal("no Depends line, no error")
	}
}

func TestCleanTarName(t *testing.T) {
	for in, want := range map[string]string{
		"./": "", ".": "", "./usr/bin/passwd": "usr/bin/passwd", "/etc/": "etc", "etc//x/../y": "etc/y",
	} {
		if got := cleanTarName(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// tarEntry is a test tar's entry.
type tarEntry struct {
	name string
	typ  byte
	mode int64
	data string
	link string
}

func writeTestTar(t *testing.T, p string, entries []tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, ModTime: mtime, Size: int64(len(e.data))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTestTar returns the tar's entries by clean name; a later entry wins.
func readTestTar(t *testing.T, p string) (map[string]*tar.Header, map[string]string, []string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdrs := map[string]*tar.Header{}
	data := map[string]string{}
	var order []string
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := cleanTarName(hdr.Name)
		hdrs[name] = hdr
		data[name] = string(b)
		order = append(order, name)
	}
	return hdrs, data, order
}

func TestComposeTestTar(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.tar")
	writeTestTar(t, base, []tarEntry{
		{name: "./", typ: tar.TypeDir, mode: 0o755},
		{name: "./usr/", typ: tar.TypeDir, mode: 0o755},
		{name: "./usr/sbin/", typ: tar.TypeDir, mode: 0o755},
		{name: "./usr/bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "./sbin", typ: tar.TypeSymlink, mode: 0o777, link: "usr/sbin"},
		{name: "./usr/bin/passwd", typ: tar.TypeReg, mode: 0o4755, data: "passwd"},
		{name: "./etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "./etc/machine-id", typ: tar.TypeReg, mode: 0o444, data: "31f55cac10814744a93279f2d8973e76\n"},
		{name: "./etc/hostname", typ: tar.TypeReg, mode: 0o644, data: "buildhost\n"},
		{name: "./usr/share/", typ: tar.TypeDir, mode: 0o755},
		{name: "./usr/share/inittab", typ: tar.TypeReg, mode: 0o644, data: "si::sysinit:/etc/init.d/rcS"},
		{name: "./etc/inittab", typ: tar.TypeSymlink, mode: 0o777, link: "../usr/share/inittab"},
	})
	g := guest{name: "t", arch: "x86_64", start: startSysvInittab, poweroff: "cmd:/sbin/poweroff"}

	t.Run("plain", func(t *testing.T) {
		out := filepath.Join(dir, "plain.tar")
		v := guestVariant(g, []byte("checker"))
		v.add = append(v.add, addEntry{name: "sbin/init", typ: tar.TypeSymlink, link: "/bin/busybox"})
		if err := composeTestTar(out, base, v); err != nil {
			t.Fatal(err)
		}
		hdrs, data, order := readTestTar(t, out)
		if data["etc/machine-id"] != "" || hdrs["etc/machine-id"].Mode != 0o444 {
			t.Errorf("machine-id: %q mode %o, want empty, mode kept", data["etc/machine-id"], hdrs["etc/machine-id"].Mode)
		}
		if data["etc/hostname"] != "localhost\n" {
			t.Errorf("hostname %q", data["etc/hostname"])
		}
		// The inittab is rewritten through its symlink, and keeps its
		// line.
		if got := data["usr/share/inittab"]; !strings.HasPrefix(got, "si::sysinit:/etc/init.d/rcS\n") ||
			!strings.HasSuffix(got, "bt:2345:once:/usr/local/sbin/boottest-check\n") {
			t.Errorf("inittab %q", got)
		}
		// sbin is a symlink to usr/sbin: the link lands there.
		if h := hdrs["usr/sbin/init"]; h == nil || h.Linkname != "/bin/busybox" {
			t.Errorf("init link not under usr/sbin: %v", order)
		}
		if h := hdrs[setuidProbe]; h == nil || h.Mode != 0o4755 || h.Uid != 0 {
			t.Errorf("setuid probe %+v", h)
		}
		if h := hdrs[ownedProbe]; h == nil || h.Mode != 0o640 || h.Uid != 1234 || h.Gid != 42 {
			t.Errorf("owned probe %+v", h)
		}
		if h := hdrs[probeDir]; h == nil || h.Mode != 0o1777 {
			t.Errorf("probe dir %+v", h)
		}
		if data[checkerPath] != "checker" || hdrs[checkerPath].Mode != 0o755 {
			t.Errorf("checker missing or mode %o", hdrs[checkerPath].Mode)
		}
		if !strings.Contains(data[checkConfPath], `"poweroff": "cmd:/sbin/poweroff"`) {
			t.Errorf("checker config %s", data[checkConfPath])
		}
		// Every parent comes before its children.
		seen := map[string]bool{"": true}
		for _, name := range order {
			if parent := filepath.Dir(name); parent != "." && !seen[parent] && hdrs[parent] != nil {
				t.Errorf("%s comes before its parent %s", name, parent)
			}
			seen[name] = true
		}
	})

	t.Run("variant", func(t *testing.T) {
		out := filepath.Join(dir, "variant.tar")
		v := variant{
			edits:    map[string]func(*tar.Header){"usr/bin/passwd": func(h *tar.Header) { h.Mode &^= 0o4000 }},
			symlinks: map[string]string{"etc/systemd/system.control/banger-first-boot.service": "/dev/null"},
		}
		if err := composeTestTar(out, base, v); err != nil {
			t.Fatal(err)
		}
		hdrs, _, _ := readTestTar(t, out)
		if hdrs["usr/bin/passwd"].Mode != 0o755 {
			t.Errorf("passwd mode %o, want 0755", hdrs["usr/bin/passwd"].Mode)
		}
		if h := hdrs["etc/systemd/system.control/banger-first-boot.service"]; h == nil || h.Linkname != "/dev/null" {
			t.Errorf("mask missing: %+v", h)
		}
	})

	t.Run("edit-that-matches-nothing", func(t *testing.T) {
		v := variant{edits: map[string]func(*tar.Header){"usr/bin/nosuch": func(*tar.Header) {}}}
		if err := composeTestTar(filepath.Join(dir, "bad.tar"), base, v); err == nil {
			t.Fatal("a control that changes nothing must be an error")
		}
	})
}

func TestModuleOrder(t *testing.T) {
	dir := t.TempDir()
	dep := "kernel/net/vsock.ko:\nkernel/net/vsock_loopback.ko: kernel/net/vmw_vsock_virtio_transport_common.ko kernel/net/vsock.ko\n" +
		"kernel/net/vmw_vsock_virtio_transport_common.ko: kernel/net/vsock.ko\n" +
		"kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n" +
		"kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\nkernel/net/core/failover.ko:\n"
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/virtio/virtio_pci.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := moduleOrder(dir, []string{"virtio_pci", "virtio_net", "vsock", "vsock_loopback"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko",
		"kernel/net/vsock.ko", "kernel/net/vmw_vsock_virtio_transport_common.ko", "kernel/net/vsock_loopback.ko"}
	if !slices.Equal(got, want) {
		t.Errorf("order\n%q\nwant\n%q", got, want)
	}
	if _, err := moduleOrder(dir, []string{"nosuch"}); err == nil {
		t.Error("a missing module: no error")
	}
}

func TestResolveDir(t *testing.T) {
	c := newTarComposer(io.Discard)
	c.links["lib"] = "usr/lib"
	c.links["usr/lib/abs"] = "/opt/x"
	c.links["loop"] = "loop"
	for in, want := range map[string]string{
		"lib/modules": "usr/lib/modules", "usr/lib/abs/y": "opt/x/y", "etc/x": "etc/x",
	} {
		if got, err := c.resolveDir(in); err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := c.resolveDir("loop/x"); err == nil {
		t.Error("a symlink loop must be an error")
	}
}

func TestParseReportAndJudge(t *testing.T) {
	all := wantChecks(matrix[0])
	var ok strings.Builder
	// Stray bytes before the first line, as a tty may leave, and CRs
	// already stripped by readLog.
	ok.WriteString("\x00\x00")
	for _, name := range all {
		ok.WriteString("BOOTTEST CHECK " + name + " ok fine, with spaces\n")
	}
	ok.WriteString("BOOTTEST PASS\n")
	r := parseReport(ok.String())
	if len(r.checks) != len(all) || r.verdict != "PASS" || r.checks[0].detail != "fine, with spaces" {
		t.Fatalf("parsed %+v", r)
	}
	if err := judge(r, all, nil); err != nil {
		t.Fatalf("a clean report: %v", err)
	}
	if err := judge(r, all, []string{"setuid-kept"}); err == nil {
		t.Fatal("a control whose check passed must fail")
	}

	failing := strings.Replace(ok.String(), "setuid-kept ok", "setuid-kept fail", 1)
	failing = strings.Replace(failing, "BOOTTEST PASS", "BOOTTEST FAIL", 1)
	if err := judge(parseReport(failing), all, []string{"setuid-kept"}); err != nil {
		t.Fatalf("the control failing as built: %v", err)
	}
	if err := judge(parseReport(failing), all, nil); err == nil {
		t.Fatal("a failed check must fail the positive boot")
	}

	for name, text := range map[string]string{
		"no-verdict":     strings.Replace(ok.String(), "BOOTTEST PASS\n", "", 1),
		"missing-check":  strings.Replace(ok.String(), "BOOTTEST CHECK root-rw ok fine, with spaces\n", "", 1),
		"doubled-check":  ok.String() + "BOOTTEST CHECK root-rw ok again\n",
		"unknown-check":  ok.String() + "BOOTTEST CHECK surprise ok\n",
		"odd-result":     strings.Replace(ok.String(), "root-rw ok", "root-rw maybe", 1),
		"odd-line":       ok.String() + "BOOTTEST WHAT\n",
		"pass-with-fail": strings.Replace(ok.String(), "root-rw ok", "root-rw fail", 1),
		"empty":          "",
	} {
		if err := judge(parseReport(text), all, nil); err == nil {
			t.Errorf("%s: judged clean", name)
		}
	}
}

// TestStalledBeforeRoot: only a boot that never reached the image is
// booted again; one whose kernel mounted the root, or tried to, is not.
func TestStalledBeforeRoot(t *testing.T) {
	const banner = "[    0.000000] Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org)\n"
	for _, c := range []struct {
		name, console string
		want          bool
	}{
		{"a soft lockup before the root", banner + "[   28.636789] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [cryptomgr_test:50]\n", true},
		{"the root mounted", banner + "[    3.1] EXT4-fs (nvme0n1): mounted filesystem 0b1c with ordered data mode. Quota mode: none.\n", false},
		{"the mount failed", banner + "[    3.1] EXT4-fs (nvme0n1): VFS: Can't find ext4 filesystem\n", false},
		{"no console at all", "", false},
		{"qemu never started the kernel", "qemu-system-x86_64: -drive: Could not open\n", false},
	} {
		if got := stalledBeforeRoot(c.console); got != c.want {
			t.Errorf("%s: stalledBeforeRoot = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSuspiciousExt4(t *testing.T) {
	console := strings.Join([]string{
		"[    1.234567] EXT4-fs (nvme0n1): mounted filesystem 0a1b-... with ordered data mode. Quota mode: none.",
		"[    2.0] EXT4-fs (nvme0n1): re-mounted 0a1b. Quota mode: none.",
		"[    3.0] EXT4-fs warning (device nvme0n1): ext4_dirblock_csum_verify:404: No space for directory leaf checksum.",
		"[    4.0] EXT4-fs error (device nvme0n1): htree_dirblock_to_tree:1080: inode #2: comm ls: bad entry",
		"[    5.0] random: crng init done",
	}, "\n")
	lines := ext4Lines(console)
	if len(lines) != 4 {
		t.Fatalf("EXT4-fs lines: %q", lines)
	}
	bad := suspiciousExt4(lines)
	if len(bad) != 2 || !strings.Contains(bad[0], "warning") || !strings.Contains(bad[1], "error") {
		t.Fatalf("suspicious: %q", bad)
	}
}

func TestCleanLog(t *testing.T) {
	in := "\x1b[0;32m  OK  \x1b[0m] Started x.\r\n\x1b[K[ *** ] Job a running (1s)\r[ *** ] Job a running (2s)\r\nBOOTTEST PASS\r\n"
	want := "  OK  ] Started x.\n[ *** ] Job a running (1s)\n[ *** ] Job a running (2s)\nBOOTTEST PASS\n"
	if got := cleanLog(in); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestHostChecks(t *testing.T) {
	g := matrix[slices.IndexFunc(matrix, func(g guest) bool { return g.name == "distroless" })]
	console := "[ 1.0] ext4pack-init: first-boot: done (no /bin/sh)\n" + workloadMarker + "\n" +
		"ext4pack-init: workload: exited with status 0\next4pack-init: SIGINT: stopping\next4pack-init: powering off\n"
	r := report{verdict: "PASS"}
	hostChecks(&r, g, console, 1, true, false)
	if len(r.failed()) != 0 || r.verdict != "PASS" || len(r.checks) != 4 {
		t.Errorf("clean console: %+v", r)
	}
	r = report{verdict: "PASS"}
	hostChecks(&r, g, console+"Kernel panic - not syncing: Attempted to kill init!\n", 0, true, false)
	if got := r.failed(); !slices.Equal(got, []string{"first-boot-once", "no-kernel-panic", "clean-poweroff"}) || r.verdict != "FAIL" {
		t.Errorf("failed %v, verdict %s", got, r.verdict)
	}
	// Without a console the workload's marker goes nowhere; its end, which
	// ext4pack-init logs, must still be there.
	noMarker := strings.ReplaceAll(console, workloadMarker, "")
	r = report{verdict: "PASS"}
	hostChecks(&r, g, noMarker, 1, true, true)
	if len(r.failed()) != 0 {
		t.Errorf("no console: failed %v", r.failed())
	}
	r = report{verdict: "PASS"}
	hostChecks(&r, g, noMarker, 1, true, false)
	if !slices.Equal(r.failed(), []string{"workload-logged"}) {
		t.Errorf("console without the marker: failed %v", r.failed())
	}
}

// TestGrowCheck is the host's half of the growth: one line from the guest
// and the kernel's own on the boot that grows, none on the next, and the
// image's block count.
func TestGrowCheck(t *testing.T) {
	grew := "[  2.1] EXT4-fs (nvme0n1): resizing filesystem from 16384 to 1048576 blocks\n" +
		"[  2.5] EXT4-fs (nvme0n1): resized filesystem to 1048576\n" +
		"ext4pack-init: grew / on /dev/nvme0n1 from 64.0 MiB to 4.0 GiB (16384 to 1048576 blocks)\n"
	quiet := "[  1.0] EXT4-fs (nvme0n1): mounted filesystem x r/w with ordered data mode. Quota mode: none.\n"
	for _, tc := range []struct {
		name           string
		console        string
		blocks, want   uint64
		grows, passing bool
	}{
		{"grew", quiet + grew, 1 << 20, 1 << 20, true, true},
		{"grew twice", quiet + grew + grew, 1 << 20, 1 << 20, true, false},
		{"no line", quiet, 16384, 1 << 20, true, false},
		{"a line but the image did not grow", quiet + grew, 16384, 1 << 20, true, false},
		{"the guest's line without the kernel's", quiet + grew[strings.LastIndex(grew[:len(grew)-1], "\n")+1:], 1 << 20, 1 << 20, true, false},
		{"quiet reboot", quiet, 1 << 20, 1 << 20, false, true},
		{"reboot grows again", quiet + grew, 1 << 20, 1 << 20, false, false},
		{"reboot with a kernel resize line", quiet + "EXT4-fs (nvme0n1): resizing filesystem from 1048576 to 1048576 blocks\n", 1 << 20, 1 << 20, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := report{verdict: "PASS"}
			growCheck(&r, tc.console, tc.blocks, tc.want, tc.grows)
			if passed := len(r.failed()) == 0 && r.verdict == "PASS"; passed != tc.passing || len(r.checks) != 1 {
				t.Errorf("passed %v, want %v: %+v", passed, tc.passing, r)
			}
		})
	}
	// The kernel's resize lines are a growth's, not a problem.
	if bad := suspiciousExt4(ext4Lines(grew)); len(bad) > 0 {
		t.Errorf("suspicious: %q", bad)
	}
}

func TestVMArgs(t *testing.T) {
	v := vm{arch: "x86_64", kernel: "/k/vmlinuz", initrd: "/k/initrd", image: "/i/rootfs.ext4", console: "/l/c.log", results: "/l/r.log"}
	args := strings.Join(v.args(), " ")
	for _, want := range []string{"-accel tcg,thread=multi", "-M q35", "-no-reboot", "-nodefaults", "-initrd /k/initrd",
		"-serial file:/l/c.log -serial file:/l/r.log", "nvme,drive=root", "hubport,id=n0,hubid=0"} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q: %s", want, args)
		}
	}
	// Nothing names an init: the kernel finds /sbin/init.
	if got, want := v.cmdline(), "console=ttyS0 root=/dev/nvme0n1 rw ip=192.0.2.2::192.0.2.1:255.255.255.0:boottest:eth0:off:192.0.2.53 panic=-1 no_timer_check"; got != want {
		t.Errorf("cmdline %q, want %q", got, want)
	}
	v.kvm = true
	if args := v.args(); !slices.Contains(args, "kvm") || slices.Contains(args, "tcg,thread=multi") {
		t.Errorf("kvm args: %v", args)
	}
	a := vm{arch: "aarch64", console: "/l/c.log", monitor: "/l/m.sock"}
	args = strings.Join(a.args(), " ")
	for _, want := range []string{"-M virt", "-cpu cortex-a57", "-monitor unix:/l/m.sock,server,nowait"} {
		if !strings.Contains(args, want) {
			t.Errorf("aarch64 args lack %q: %s", want, args)
		}
	}
	if strings.Count(args, "-serial") != 1 || !strings.Contains(a.cmdline(), "console=ttyAMA0") {
		t.Errorf("aarch64: %s / %s", args, a.cmdline())
	}
	// No console: ttyS0 goes nowhere, the report stays on the second
	// port, and the kernel's log reaches the console file from the third.
	v = vm{arch: "x86_64", console: "/l/c.log", results: "/l/r.log", noConsole: true}
	args = strings.Join(v.args(), " ")
	if !strings.Contains(args, "-serial null -serial file:/l/r.log -serial file:/l/c.log") {
		t.Errorf("no console: %s", args)
	}
	if c := v.cmdline(); !strings.HasPrefix(c, "console=hvc0 earlyprintk=serial,0x3e8,115200 keep_bootcon root=") {
		t.Errorf("no console: %s", c)
	}
}

// TestScriptsShellcheck lints the host's install-deps.sh.
func TestScriptsShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		skipOrFail(t, "shellcheck not found (apt-get install shellcheck)")
	}
	out, err := exec.Command(sc, "-s", "sh", "install-deps.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck install-deps.sh: %v\n%s", err, out)
	}
}

func TestCpio(t *testing.T) {
	var c cpioWriter
	c.file("init", 0o755, []byte("abc"))
	c.trailer()
	b := c.buf.Bytes()
	if len(b)%4 != 0 || !bytes.HasPrefix(b, []byte("070701")) || !bytes.Contains(b, []byte("init\x00")) ||
		!bytes.Contains(b, []byte("TRAILER!!!\x00")) {
		t.Errorf("cpio %q", b)
	}
	// The header is 110 bytes; the name with its NUL is 5, padded to 116.
	if string(b[116:119]) != "abc" {
		t.Errorf("data at %q", b[110:124])
	}
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		skipOrFail(t, "cpio not found (apt-get install cpio): it judges the initramfs writer")
	}
	cmd := exec.Command(cpio, "-t")
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "init") {
		t.Errorf("cpio -t: %v\n%s", err, out)
	}
}
