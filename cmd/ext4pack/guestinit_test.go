package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

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

// bundleWith runs make-bundle on members with args (after --rootfs-tar,
// --name, --arch and --out) and returns its exit code and stderr, and on
// success the manifest.json as it is written and the image's path.
func bundleWith(t *testing.T, args []string, ms ...tarMember) (code int, stderr, manifest, img string) {
	t.Helper()
	in := writeTemp(t, "rootfs.tar", tarOf(t, ms...))
	out := filepath.Join(t.TempDir(), "b.tar.zst")
	code, _, stderr = runCLI(t, append([]string{"make-bundle", "--rootfs-tar", in, "--name", "b", "--arch", "x86_64",
		"--out", out}, args...)...)
	if code != 0 {
		return code, stderr, "", ""
	}
	raw := manifestJSON(t, out)
	_, _, b := readBundle(t, out)
	img = writeTemp(t, "rootfs.ext4", b)
	oracle.Fsck(t, img)
	return code, stderr, raw, img
}

// statImage returns debugfs's stat of p in img, "" if p is not there.
func statImage(t *testing.T, img, p string) string {
	t.Helper()
	out, err := exec.Command(requireTool(t, "debugfs", "e2fsprogs"), "-R", "stat "+p, img).CombinedOutput()
	if err != nil || strings.Contains(string(out), "File not found") {
		return ""
	}
	return string(out)
}

// TestMakeBundleGrows is SPEC "Growing to the disk" at make-bundle: by
// default the guest grows / (the manifest's rootfs_grows, the helper, the
// switch, the init's service); --no-grow leaves it all out and needs no
// ext4pack-init in a guest that has its own init and ip.
func TestMakeBundleGrows(t *testing.T) {
	systemdImage := append(usrMerged, treg("usr/lib/systemd/systemd", 0o755, "x"),
		tlink("usr/sbin/init", "../lib/systemd/systemd"), treg("usr/bin/ip", 0o755, "ip"))
	growPaths := []string{"/etc/banger/grow-root", "/usr/local/sbin/ext4pack-init",
		"/etc/systemd/system/banger-grow-root.service", "/etc/systemd/system/local-fs.target.wants/banger-grow-root.service"}
	agent := []string{"--agent-bin", testAgent(t)}
	withInit := append(slices.Clone(agent), "--init-bin", testInit(t))
	t.Run("default", func(t *testing.T) {
		code, stderr, m, img := bundleWith(t, withInit, systemdImage...)
		if code != 0 || !strings.Contains(m, `"rootfs_grows": true`) {
			t.Fatalf("exit %d, manifest %s, stderr %s", code, m, stderr)
		}
		for _, p := range growPaths {
			if statImage(t, img, p) == "" {
				t.Errorf("%s is not in the image", p)
			}
		}
	})
	t.Run("--no-grow", func(t *testing.T) {
		// No --init-bin: this guest has an init and ip, and only the
		// growth would need ext4pack-init.
		code, stderr, m, img := bundleWith(t, append(slices.Clone(agent), "--no-grow"), systemdImage...)
		if code != 0 || strings.Contains(m, "rootfs_grows") || !strings.Contains(m, `"guest_init": "systemd"`) {
			t.Fatalf("exit %d, manifest %s, stderr %s", code, m, stderr)
		}
		for _, p := range growPaths {
			if statImage(t, img, p) != "" {
				t.Errorf("%s is in the image", p)
			}
		}
	})
	t.Run("growing needs ext4pack-init", func(t *testing.T) {
		code, stderr, _, _ := bundleWith(t, agent, systemdImage...)
		if code != 1 || !strings.Contains(stderr, "--init-bin") || !strings.Contains(stderr, "--no-grow") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("--no-agents", func(t *testing.T) {
		code, stderr, m, _ := bundleWith(t, []string{"--no-agents"}, systemdImage...)
		if code != 0 || strings.Contains(m, "rootfs_grows") {
			t.Errorf("exit %d, manifest %s, stderr %s", code, m, stderr)
		}
	})
}

// TestMakeBundleDevNull: a guest whose PID 1 is ext4pack-init gets
// /dev/null where the input has none, so that the Go runtime finds it
// before main when the kernel has no console; the input's own stays, with
// no warning.
func TestMakeBundleDevNull(t *testing.T) {
	args := []string{"--agent-bin", testAgent(t), "--init-bin", testInit(t)}
	code, stderr, _, img := bundleWith(t, args, treg("bin/sh", 0o755, "sh"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if st := statImage(t, img, "/dev/null"); !strings.Contains(st, "Type: character special") ||
		!strings.Contains(st, "Mode:  0666") || !strings.Contains(st, "Device major/minor number: 01:03") {
		t.Errorf("/dev/null:\n%s", st)
	}
	own := tarMember{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 1, Devminor: 3, Uid: 7}}
	code, stderr, _, img = bundleWith(t, args, treg("bin/sh", 0o755, "sh"), tdir("dev/"), own)
	if code != 0 || strings.Contains(stderr, "/dev/null") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if st := statImage(t, img, "/dev/null"); !strings.Contains(st, "Mode:  0600") || !strings.Contains(st, "User:     7") {
		t.Errorf("the input's /dev/null was not kept:\n%s", st)
	}
}

// manifestJSON returns a bundle's manifest.json as it is written.
func manifestJSON(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil || h.Name != "manifest.json" {
		t.Fatalf("first member %v, %v", h, err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
