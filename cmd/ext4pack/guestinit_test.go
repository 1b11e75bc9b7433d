package main

import (
	"archive/tar"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

func tdir(name string) tarMember {
	return tarMember{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}
func treg(name string, mode int64, data string) tarMember {
	return tarMember{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, data: []byte(data)}
}
func tlink(name, target string) tarMember {
	return tarMember{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

// catImage returns a file of an ext4 image, read with debugfs.
func catImage(t *testing.T, img, p string) string {
	t.Helper()
	out, err := exec.Command(requireTool(t, "debugfs", "e2fsprogs"), "-R", "cat "+p, img).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", p, err)
	}
	return string(out)
}

// bundleImage runs make-bundle on members and returns its stderr, the
// manifest's guest_init and the image's path.
func bundleImage(t *testing.T, ms ...tarMember) (code int, stderr, guestInit, img string) {
	t.Helper()
	in := writeTemp(t, "rootfs.tar", tarOf(t, ms...))
	out := filepath.Join(t.TempDir(), "b.tar.zst")
	code, _, stderr = runCLI(t, "make-bundle", "--rootfs-tar", in, "--name", "b", "--arch", "x86_64",
		"--agent-bin", testAgent(t), "--init-bin", testInit(t), "--out", out)
	if code != 0 {
		return code, stderr, "", ""
	}
	_, m, b := readBundle(t, out)
	img = writeTemp(t, "rootfs.ext4", b)
	oracle.Fsck(t, img)
	return code, stderr, m.GuestInit, img
}

const alpineInittab = "::sysinit:/sbin/openrc sysinit\n::sysinit:/sbin/openrc boot\n::wait:/sbin/openrc default\n" +
	"::ctrlaltdel:/sbin/reboot\n::shutdown:/sbin/openrc shutdown\n"

var usrMerged = []tarMember{tdir("usr/"), tdir("usr/sbin/"), tdir("usr/lib/"), tdir("usr/bin/"),
	tlink("sbin", "usr/sbin"), tlink("lib", "usr/lib"), tlink("bin", "usr/bin")}

// TestMakeBundleGuestInit: make-bundle names the init it found on stderr
// and in the manifest, and installs the files where that init reads them.
func TestMakeBundleGuestInit(t *testing.T) {
	t.Run("no init, usr-merged", func(t *testing.T) {
		code, stderr, gi, img := bundleImage(t, append(usrMerged, treg("usr/bin/sh", 0o755, "sh"))...)
		if code != 0 || gi != "ext4pack-init" || !strings.Contains(stderr, "guest init: ext4pack-init") {
			t.Fatalf("exit %d, guest_init %q, stderr %q", code, gi, stderr)
		}
		// /sbin is a symlink: the init lands in usr/sbin, and sbin stays
		// a symlink.
		out, err := exec.Command(requireTool(t, "debugfs", "e2fsprogs"), "-R", "stat /usr/sbin/init", img).Output()
		if err != nil || !strings.Contains(string(out), `Fast link dest: "/usr/local/sbin/ext4pack-init"`) {
			t.Errorf("/usr/sbin/init: %v\n%s", err, out)
		}
		if strings.Contains(stderr, "warning") {
			t.Errorf("warnings: %s", stderr)
		}
	})
	t.Run("systemd", func(t *testing.T) {
		code, stderr, gi, _ := bundleImage(t, append(usrMerged, treg("usr/lib/systemd/systemd", 0o755, "x"),
			tlink("usr/sbin/init", "../lib/systemd/systemd"), treg("usr/bin/ip", 0o755, "ip"))...)
		if code != 0 || gi != "systemd" || !strings.Contains(stderr, "guest init: systemd (/sbin/init is /usr/lib/systemd/systemd)") {
			t.Fatalf("exit %d, guest_init %q, stderr %q", code, gi, stderr)
		}
	})
	t.Run("busybox, twice", func(t *testing.T) {
		base := []tarMember{tdir("bin/"), treg("bin/busybox", 0o755, "bb"), tdir("sbin/"), tlink("sbin/init", "/bin/busybox"),
			tdir("etc/")}
		code, stderr, gi, img := bundleImage(t, append(base, treg("etc/inittab", 0o644, alpineInittab))...)
		if code != 0 || gi != "busybox" {
			t.Fatalf("exit %d, guest_init %q, stderr %q", code, gi, stderr)
		}
		once := catImage(t, img, "/etc/inittab")
		if !strings.HasPrefix(once, alpineInittab[:strings.Index(alpineInittab, "::wait")]) ||
			!strings.Contains(once, "::respawn:/usr/local/bin/banger-vsock-agent --port=1024 --user=65534:65534\n") {
			t.Errorf("inittab after one run:\n%s", once)
		}
		// A second make-bundle over the result adds nothing.
		code, stderr, gi, img = bundleImage(t, append(base, treg("etc/inittab", 0o644, once))...)
		if code != 0 || gi != "busybox" {
			t.Fatalf("second run: exit %d, guest_init %q, stderr %q", code, gi, stderr)
		}
		if twice := catImage(t, img, "/etc/inittab"); twice != once {
			t.Errorf("inittab after two runs:\n%s\nafter one:\n%s", twice, once)
		}
	})
	t.Run("unknown init", func(t *testing.T) {
		code, stderr, _, _ := bundleImage(t, tdir("sbin/"), treg("sbin/tini", 0o755, "x"), tlink("sbin/init", "tini"))
		if code != 1 || !strings.Contains(stderr, "/sbin/init is /sbin/tini") || !strings.Contains(stderr, "--no-agents") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}
