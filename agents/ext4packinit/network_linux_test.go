package main

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestApplyIPOnKernel applies an ip= configuration to lo in a network and
// UTS namespace of its own, twice, and reads back what the kernel has.
// It needs root (CAP_SYS_ADMIN for the namespaces); in CI that is given.
func TestApplyIPOnKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "" {
			t.Skip("needs root for a network namespace (CI is unset, so this skips; with CI set it fails)")
		}
		t.Fatal("CI is set but the test does not run as root")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The resolv.conf link must be replaced, not followed.
	if err := os.Symlink("/run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	var addrs []string
	var hostname string
	go func() {
		// The namespaces belong to this thread only, which dies with the
		// goroutine since it stays locked.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET | unix.CLONE_NEWUTS); err != nil {
			errc <- err
			return
		}
		c, err := parseIP("192.0.2.2::192.0.2.1:255.255.255.0:nstest:lo:off:192.0.2.53")
		if err != nil {
			errc <- err
			return
		}
		e := netEnv{sys: "/sys", root: root, logf: t.Logf, modprobe: func(string) {}, sleep: time.Sleep}
		for i := 0; i < 2; i++ {
			if err := applyIP(c, e); err != nil {
				errc <- err
				return
			}
		}
		ifc, err := net.InterfaceByName("lo")
		if err != nil {
			errc <- err
			return
		}
		as, err := ifc.Addrs()
		if err != nil {
			errc <- err
			return
		}
		for _, a := range as {
			addrs = append(addrs, a.String())
		}
		if ifc.Flags&net.FlagUp == 0 {
			addrs = append(addrs, "DOWN")
		}
		var u unix.Utsname
		unix.Uname(&u)
		hostname = unix.ByteSliceToString(u.Nodename[:])
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if strings.Join(addrs, " ") != "127.0.0.1/8 192.0.2.2/24 ::1/128" && strings.Join(addrs, " ") != "127.0.0.1/8 192.0.2.2/24" {
		t.Errorf("lo has %q", addrs)
	}
	if hostname != "nstest" {
		t.Errorf("hostname %q", hostname)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/hostname")); err != nil || string(b) != "nstest\n" {
		t.Errorf("/etc/hostname %q %v", b, err)
	}
	fi, err := os.Lstat(filepath.Join(root, "etc/resolv.conf"))
	b, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
	if err != nil || !fi.Mode().IsRegular() || !strings.Contains(string(b), "nameserver 192.0.2.53\n") {
		t.Errorf("resolv.conf: %v %v %q", fi, err, b)
	}
}
