package boottest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// vm is one qemu boot.
type vm struct {
	arch    string // x86_64 or aarch64
	kvm     bool   // KVM if the CPU has vmx or svm and the arch is the host's; TCG otherwise
	kernel  string // booted directly: no bootloader
	initrd  string // the test initramfs (see rdinit)
	image   string // the raw ext4 image, the guest's /dev/nvme0n1
	console string // file that receives the console
	results string // file that receives the second serial port (x86_64), the checker's report only
	monitor string // unix socket of qemu's monitor, for ctrl-alt-del
	// cad says to send ctrl-alt-del once the checker's verdict is in the
	// log: how Firecracker asks a guest to stop.
	cad     bool
	timeout time.Duration
	// noConsole boots (x86_64) with console= naming a port that does not
	// exist, so that /dev/console cannot be opened; the kernel's log,
	// what the guest writes to /dev/kmsg included, still reaches the
	// console file, through an early console on a third port.
	noConsole bool
}

// noConsoleArgs are the kernel arguments of a boot without a console: hvc0,
// a virtio console the VM does not have (a ttyS index that does not exist
// would not do: 8250 takes ttyS0 instead), and the early console on the
// third port (0x3e8), kept past boot, has no tty, so /dev/console has
// nothing to open (ENODEV).
var noConsoleArgs = []string{"console=hvc0", "earlyprintk=serial,0x3e8,115200", "keep_bootcon"}

// consoleDev is the serial console's name in the guest, by arch.
var consoleDev = map[string]string{"x86_64": "ttyS0", "aarch64": "ttyAMA0"}

// cmdline returns the kernel command line: the console, the root device,
// ip=, and panic=-1 so that a guest whose init dies ends the test at once.
// Nothing tells the kernel which init to run: it finds /sbin/init.
func (v vm) cmdline(extra ...string) string {
	console := []string{"console=" + consoleDev[v.arch]}
	if v.noConsole {
		console = noConsoleArgs
	}
	args := append(console,
		// The cloud kernel has NVMe and ext4 built in. rw: the image
		// must work as a writable root.
		"root=/dev/nvme0n1", "rw",
		// client:server:gw:netmask:hostname:device:autoconf:dns0, read by
		// the guest's network set-up (the kernel has no IP_PNP).
		fmt.Sprintf("ip=%s::%s:%s:%s:eth0:off:%s", guestAddr, guestGateway, guestNetmask, guestHostname, guestDNS),
		// A panic reboots at once, and -no-reboot turns that into qemu's
		// exit, so a kernel that cannot mount root fails fast.
		"panic=-1",
	)
	if !v.kvm {
		// Under TCG on a loaded host the kernel's check that the IO-APIC
		// timer ticks can miss the ticks and panic ("IO-APIC + timer
		// doesn't work!"); emulated hardware needs no such check.
		args = append(args, "no_timer_check")
	}
	return strings.Join(append(args, extra...), " ")
}

// args returns qemu's arguments.
func (v vm) args(extra ...string) []string {
	var args []string
	switch {
	case v.kvm:
		args = []string{"-accel", "kvm", "-cpu", "host"}
	case v.arch == "aarch64":
		// cortex-a57 is ARMv8.0: cheaper to emulate than -cpu max, whose
		// pointer authentication TCG computes in software.
		args = []string{"-accel", "tcg,thread=multi", "-cpu", "cortex-a57"}
	default:
		args = []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
	}
	machine := "q35" // with NVMe: the microvm machine type hangs under TCG
	if v.arch == "aarch64" {
		machine = "virt"
	}
	args = append(args,
		"-M", machine, "-smp", "2", "-m", "1024",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
	)
	if v.noConsole {
		args = append(args, "-serial", "null")
	} else {
		args = append(args, "-serial", "file:"+v.console)
	}
	if v.arch == "x86_64" {
		// A second port: a clean channel for the checker's report. The
		// virt board has one UART; there the report goes to the console.
		args = append(args, "-serial", "file:"+v.results)
	}
	if v.noConsole {
		args = append(args, "-serial", "file:"+v.console)
	}
	if v.monitor != "" {
		args = append(args, "-monitor", "unix:"+v.monitor+",server,nowait")
	}
	return append(args,
		"-kernel", v.kernel,
		"-initrd", v.initrd,
		"-append", v.cmdline(extra...),
		// A zeroed range becomes a hole again, as the guest's kernel
		// zeroes the inode tables of the groups a growth added: the
		// image stays sparse.
		"-drive", "file="+v.image+",if=none,id=root,format=raw,discard=unmap,detect-zeroes=unmap",
		"-device", "nvme,drive=root,serial=boottest",
		// A card on a hub with no other port: eth0 exists, and no packet
		// it sends goes anywhere.
		"-netdev", "hubport,id=n0,hubid=0",
		"-device", "virtio-net-pci,netdev=n0",
	)
}

// qemuBinary is the system emulator for each guest arch.
var qemuBinary = map[string]string{"x86_64": "qemu-system-x86_64", "aarch64": "qemu-system-aarch64"}

// run boots the guest and waits for qemu to exit, which it does when the
// guest powers off or the kernel panics. After v.timeout qemu is killed and
// run fails. With v.cad, ctrl-alt-del is sent once the report has a verdict.
func (v vm) run(ctx context.Context, extra ...string) (time.Duration, error) {
	path, err := lookTool(qemuBinary[v.arch])
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, v.args(extra...)...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var cadErr error
	if v.cad {
		go func() { cadErr = v.ctrlAltDelAfterVerdict(ctx, done) }()
	}
	err = <-done
	took := time.Since(start)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return took, fmt.Errorf("qemu killed after %v: the guest did not power off in time (ctrl-alt-del: %v)\n%s",
			took.Round(time.Second), cadErr, out.String())
	}
	if err != nil {
		return took, fmt.Errorf("qemu: %w\n%s", err, out.String())
	}
	return took, nil
}

// ctrlAltDelAfterVerdict waits for BOOTTEST PASS or FAIL in the report and
// then presses ctrl-alt-del through qemu's monitor.
func (v vm) ctrlAltDelAfterVerdict(ctx context.Context, done <-chan error) error {
	for {
		if r := parseReport(readLog(v.results)); r.verdict != "" {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	conn, err := net.Dial("unix", v.monitor)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The monitor greets first; a command sent before it is read may be
	// lost. sendkey holds the keys 100 ms, so the connection stays open a
	// little after it.
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	if _, err := conn.Read(buf); err != nil {
		return fmt.Errorf("reading the monitor's greeting: %w", err)
	}
	if _, err := conn.Write([]byte("sendkey ctrl-alt-delete\n")); err != nil {
		return err
	}
	time.Sleep(time.Second)
	return nil
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
