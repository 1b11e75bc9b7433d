package boottest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
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
)

// vm is one qemu boot.
type vm struct {
	kvm     bool   // KVM if the CPU has vmx or svm; TCG otherwise
	kernel  string // vmlinuz, booted directly: no bootloader, no initramfs
	image   string // the raw ext4 image, the guest's /dev/nvme0n1
	banger  bool   // ask the checker for the banger checks
	console string // file that receives ttyS0: the kernel's and systemd's console
	results string // file that receives ttyS1: the checker's report only
	timeout time.Duration
}

// cmdline returns the kernel command line.
func (v vm) cmdline() string {
	args := []string{
		"console=ttyS0",
		// The cloud kernel has NVMe and ext4 built in, so it mounts the
		// image itself. rw: the image must work as a writable root.
		"root=/dev/nvme0n1", "rw",
		// A panic reboots at once, and -no-reboot turns that into qemu's
		// exit, so a kernel that cannot mount root fails fast.
		"panic=-1",
		// No serial getty: it waits for dev-ttyS0.device, which only
		// udev announces, and a minbase rootfs has no udev, so every boot
		// would stall 90 s on that job's timeout before multi-user.target.
		"systemd.getty_auto=0",
		// eth0, not enp0s2: the network bootstrap is told the device.
		"net.ifnames=0",
		// client:server:gw:netmask:hostname:device:autoconf, read by
		// banger-network-bootstrap (the kernel has no IP_PNP).
		fmt.Sprintf("ip=%s::%s:%s:%s:eth0:off", guestAddr, guestGateway, guestNetmask, guestHostname),
		// What the checker expects (see guest/boottest-check.sh).
		fmt.Sprintf("boottest.addr=%s/%d", guestAddr, guestPrefix),
		"boottest.hostname=" + guestHostname,
	}
	if v.banger {
		args = append(args, "boottest.banger=1")
	}
	return strings.Join(args, " ")
}

// args returns qemu's arguments.
func (v vm) args() []string {
	accel := []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
	if v.kvm {
		accel = []string{"-accel", "kvm", "-cpu", "host"}
	}
	args := append(accel,
		// q35 with NVMe: the microvm machine type hangs under TCG.
		"-M", "q35", "-smp", "2", "-m", "1024",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		// Two serial ports: the console, and a clean channel for the
		// checker's report.
		"-serial", "file:"+v.console,
		"-serial", "file:"+v.results,
		"-kernel", v.kernel,
		"-append", v.cmdline(),
		"-drive", "file="+v.image+",if=none,id=root,format=raw",
		"-device", "nvme,drive=root,serial=boottest",
		// A card on a hub with no other port: eth0 exists, and no packet
		// it sends goes anywhere.
		"-netdev", "hubport,id=n0,hubid=0",
		"-device", "virtio-net-pci,netdev=n0",
	)
	return args
}

// run boots the guest and waits for qemu to exit, which it does when the
// checker powers the guest off or the kernel panics. After v.timeout qemu
// is killed and run fails.
func (v vm) run(ctx context.Context) (time.Duration, error) {
	path, err := lookTool("qemu-system-x86_64")
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, v.args()...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return took, fmt.Errorf("qemu killed after %v: the guest did not power off in time\n%s", took.Round(time.Second), out.String())
	}
	if err != nil {
		return took, fmt.Errorf("qemu: %w\n%s", err, out.String())
	}
	return took, nil
}

// readLog returns a serial log as plain lines: the guest's tty ends lines
// with CRLF, systemd's progress spinner redraws a line with a bare CR, and
// its colours are ANSI escapes, none of which a log reader wants.
func readLog(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p, err)
	}
	return cleanLog(string(b))
}

// ansiCSI matches an ANSI control sequence (ECMA-48 CSI): ESC [ parameters
// final-byte.
var ansiCSI = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

func cleanLog(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return ansiCSI.ReplaceAllString(s, "")
}
