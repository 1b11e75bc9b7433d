//go:build linux

// Command rdinit is the /init of the boot test's initramfs (internal/boottest).
// It stands in for what a Firecracker kernel has built in and Debian's cloud
// kernel builds as modules: it loads the modules listed in /modules.order
// (virtio_pci, virtio_net, vsock and vsock_loopback, each after what it
// needs), mounts devtmpfs, mounts the root= device, moves /dev onto it and
// hands over to the image's /sbin/init. It adds nothing to the image.
//
// It also lets anyone write the second serial port, where the guest's checker
// reports: under ext4pack-init it may run as an unprivileged workload.
//
// Booted without a console (console= naming a device that does not exist),
// it plays what a kernel without initramfs and without DEVTMPFS_MOUNT does:
// the image's /sbin/init starts with descriptors 0-2 closed and nothing
// mounted on the image's /dev. The kernel left them closed for rdinit too,
// and the Go runtime opened this initramfs's /dev/null on them; rdinit's own
// lines then go to the kernel's log.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// logw is where rdinit's lines go: the console, or the kernel's log.
var logw io.Writer = os.Stderr

func logf(format string, args ...any) {
	fmt.Fprintf(logw, "rdinit: "+format+"\n", args...)
}

// isDevNull reports whether descriptor fd is /dev/null (character device
// 1:3): what the Go runtime opens on a descriptor the kernel left closed.
func isDevNull(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR &&
		unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3
}

func fail(format string, args ...any) {
	logf(format, args...)
	// PID 1 exiting panics the kernel, which panic=-1 turns into qemu's
	// exit: the host sees the boot fail at once.
	os.Exit(1)
}

func main() {
	noConsole := isDevNull(0) && isDevNull(2)
	os.MkdirAll("/dev", 0o755)
	os.MkdirAll("/proc", 0o755)
	if err := unix.Mount("devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"); err != nil {
		fail("mount devtmpfs: %v", err)
	}
	if noConsole {
		if kmsg, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
			logw = kmsg
		}
		logf("no console: /sbin/init starts with descriptors 0-2 closed and no devtmpfs on the image's /dev")
	}
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		fail("mount proc: %v", err)
	}
	order, err := os.ReadFile("/modules.order")
	if err != nil {
		fail("%v", err)
	}
	for _, m := range strings.Fields(string(order)) {
		f, err := os.Open("/modules/" + m)
		if err != nil {
			fail("%v", err)
		}
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
			fail("loading %s: %v", m, err)
		}
		f.Close()
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	root, flags := "", uintptr(0)
	for _, w := range strings.Fields(string(cmdline)) {
		switch {
		case strings.HasPrefix(w, "root="):
			root = strings.TrimPrefix(w, "root=")
		case w == "ro":
			flags |= unix.MS_RDONLY
		}
	}
	if root == "" {
		fail("no root= on the kernel command line")
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(root); err == nil {
			break
		}
		if i == 100 {
			fail("%s did not appear", root)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, tty := range []string{"/dev/ttyS1"} {
		os.Chmod(tty, 0o666)
	}
	os.MkdirAll("/newroot", 0o755)
	if err := unix.Mount(root, "/newroot", "ext4", flags, ""); err != nil {
		fail("mount %s: %v", root, err)
	}
	if err := unix.Unmount("/proc", 0); err != nil {
		fail("unmount /proc: %v", err)
	}
	if noConsole {
		unix.Unmount("/dev", unix.MNT_DETACH)
	} else if err := unix.Mount("/dev", "/newroot/dev", "", unix.MS_MOVE, ""); err != nil {
		logf("moving /dev: %v; the image's init mounts its own", err)
		unix.Unmount("/dev", unix.MNT_DETACH)
	}
	// switch_root: make the new root /, then run its init.
	if err := unix.Chdir("/newroot"); err != nil {
		fail("%v", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		fail("moving the root: %v", err)
	}
	if err := unix.Chroot("."); err != nil {
		fail("chroot: %v", err)
	}
	unix.Chdir("/")
	if noConsole {
		// As the kernel leaves them for an init it cannot give a console.
		logw = io.Discard
		for fd := 0; fd < 3; fd++ {
			unix.Close(fd)
		}
	}
	err = unix.Exec("/sbin/init", []string{"/sbin/init"}, os.Environ())
	fail("exec /sbin/init: %v", err)
}
