package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Guest paths ext4pack installs (agents package, SPEC "Guest files").
const (
	agentPath       = "/usr/local/bin/banger-vsock-agent"
	firstBootScript = "/usr/local/libexec/banger-first-boot"
	firstBootMarker = "/var/lib/banger/first-boot-pending"
	vsockPortFile   = "/etc/banger/vsock-port"
	machineIDPath   = "/etc/machine-id"
	shellPath       = "/bin/sh"
)

// The agent runs as nobody: it only reads /proc/net and answers HTTP.
const nobody = 65534

// Time limits of the shutdown: TERM, then KILL, as SPEC says.
const (
	termGrace = 10 * time.Second
	killGrace = 5 * time.Second
	// agentRestartDelay keeps a crashing agent from taking the CPU.
	agentRestartDelay = 2 * time.Second
)

// initd is PID 1's state.
type initd struct {
	p        *procs
	stopping atomic.Bool // set once, when a shutdown signal came
	log      *consoleLog
	devNull  int // stdin of the children; -1 until /dev is there
}

// runInit is PID 1. Nothing here returns: a step that fails or panics is
// logged and the next one runs; the main loop restarts if it panics.
func runInit() {
	in := &initd{p: newProcs(), devNull: -1, log: newConsoleLog(hasConsole(2), os.Stderr, "/dev/kmsg")}
	// Signals first, so that none sent during boot is lost. The others a
	// process may send are caught too, and dropped: left to Go's defaults,
	// SIGQUIT or SIGHUP would end PID 1, which panics the kernel. They are
	// caught rather than ignored, since an ignored signal stays ignored in
	// every child.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGPWR,
		unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE, unix.SIGALRM,
		unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGVTALRM)
	in.logf("ext4pack-init %s: booting", version)
	// Ctrl-alt-del (Firecracker's SendCtrlAltDel) then sends SIGINT to
	// PID 1 instead of rebooting at once.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		in.logf("ctrl-alt-del stays a hard reboot: %v", err)
	}
	go in.safely("boot", in.boot)
	for {
		in.safely("main loop", func() { in.loop(sigs) })
		time.Sleep(time.Second)
	}
}

// loop reaps children and starts the shutdown when asked. It returns only
// by panicking.
func (in *initd) loop(sigs <-chan os.Signal) {
	// A SIGCHLD can be dropped when the channel is full; reaping now and
	// then collects what it would have.
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case s := <-sigs:
			switch s {
			case unix.SIGCHLD:
				in.p.reap()
			case unix.SIGTERM, unix.SIGINT, unix.SIGPWR:
				if in.stopping.CompareAndSwap(false, true) {
					go in.safely("shutdown", func() { in.shutdown(s) })
				}
			default:
				in.logf("ignoring %v", s)
			}
		case <-tick.C:
			in.p.reap()
		}
	}
}

// boot runs the start-up steps in order.
func (in *initd) boot() {
	in.step("mounts", in.mounts)
	in.safely("console", in.settleConsole)
	in.step("grow", in.grow)
	in.step("network", in.network)
	in.step("first boot", in.firstBoot)
	go in.safely("agent", in.superviseAgent)
	in.step("workload", in.startWorkload)
}

// logf writes a line to the console, or where PID 1 writes in its stead
// (see consoleLog).
func (in *initd) logf(format string, args ...any) {
	in.log.line(fmt.Sprintf("ext4pack-init: "+format, args...))
}

// settleConsole, once /dev is mounted, gets the console back on
// descriptors 0-2 if the kernel could not give it, or else says that the
// lines go to the kernel's log.
func (in *initd) settleConsole() {
	if in.log.settle(func() error { return reopenConsole("/dev/console") }) == logKmsg {
		in.logf("no console (/dev/console cannot be opened): this log goes to the kernel's (dmesg), the services' output nowhere")
	}
}

// grow grows / to its block device while the switch asks for it (SPEC
// "Growing to the disk"): one line when it did, none when / already fills
// the device.
func (in *initd) grow() error {
	if _, err := os.Lstat(growSwitch); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	msg, err := growFS("/")
	if msg != "" {
		in.logf("%s", msg)
	}
	return err
}

// safely runs fn, turning a panic into a log line.
func (in *initd) safely(name string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			in.logf("%s: panic: %v\n%s", name, r, debug.Stack())
		}
	}()
	fn()
}

// step runs one start-up step; its failure is logged and boot goes on.
func (in *initd) step(name string, fn func() error) {
	in.safely(name, func() {
		if err := fn(); err != nil {
			in.logf("%s: %v", name, err)
		}
	})
}

// mount is one filesystem PID 1 mounts where nothing did.
type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	mode                   os.FileMode // of the mount point, if it has to be made
}

// mounts are what PID 1 mounts, in order, each where nothing is mounted yet:
// SPEC's list, with the options systemd and udev use for them.
var mounts = []mount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", 0o555},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", 0o555},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", 0o755},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0620,ptmxmode=0666", 0o755},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", 0o1777},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", 0o755},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", 0o1777},
}

// devLinks are the /dev symlinks udev or systemd would make; devtmpfs has
// none of them.
var devLinks = [][2]string{
	{"/dev/fd", "/proc/self/fd"},
	{"/dev/stdin", "/proc/self/fd/0"},
	{"/dev/stdout", "/proc/self/fd/1"},
	{"/dev/stderr", "/proc/self/fd/2"},
}

func (in *initd) mounts() error {
	var errs []error
	for _, m := range mounts {
		if isMountpoint(m.target) {
			continue
		}
		if err := os.MkdirAll(m.target, m.mode); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err))
		}
	}
	for _, l := range devLinks {
		if _, err := os.Lstat(l[0]); errors.Is(err, fs.ErrNotExist) {
			if err := os.Symlink(l[1], l[0]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if fd, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
		in.devNull = fd
	} else {
		errs = append(errs, fmt.Errorf("/dev/null: %w", err))
	}
	return errors.Join(errs...)
}

// isMountpoint reports whether target is a mount point: /proc by its
// filesystem type (there is no mount table before it), the others by
// /proc/self/mountinfo.
func isMountpoint(target string) bool {
	if target == "/proc" {
		var st unix.Statfs_t
		return unix.Statfs(target, &st) == nil && st.Type == unix.PROC_SUPER_MAGIC
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		// The fifth field is the mount point (proc(5)).
		if f := strings.Fields(line); len(f) > 4 && f[4] == target {
			return true
		}
	}
	return false
}

// stdio returns the descriptors a child starts with: /dev/null, and the
// console for its output.
func (in *initd) stdio() []uintptr {
	stdin := uintptr(0)
	if in.devNull >= 0 {
		stdin = uintptr(in.devNull)
	}
	return []uintptr{stdin, 1, 2}
}

// network brings up lo and applies ip=. Without a hostname in ip=, the one
// in /etc/hostname is set, as other inits do.
func (in *initd) network() error {
	var errs []error
	if err := bringUpLo(); err != nil {
		errs = append(errs, err)
	}
	c := ipConfig{}
	if b, err := os.ReadFile("/proc/cmdline"); err != nil {
		errs = append(errs, err)
	} else if value, ok := ipArgument(string(b)); ok {
		if c, err = parseIP(value); err != nil {
			errs = append(errs, err)
		} else {
			in.logf("ip=: %v", c)
		}
	}
	if c.hostname == "" {
		if b, err := os.ReadFile("/etc/hostname"); err == nil {
			if h := strings.TrimSpace(string(b)); h != "" && len(h) <= maxHostname {
				if err := unix.Sethostname([]byte(h)); err != nil {
					errs = append(errs, fmt.Errorf("sethostname %q: %w", h, err))
				}
			}
		}
	}
	e := netEnv{sys: "/sys", root: "/", logf: in.logf, modprobe: in.modprobe, sleep: time.Sleep}
	if err := applyIP(c, e); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// modprobe loads a module with the guest's modprobe, where it has one.
func (in *initd) modprobe(module string) {
	for _, p := range []string{"/sbin/modprobe", "/usr/sbin/modprobe", "/bin/modprobe", "/usr/bin/modprobe"} {
		if !isExecutable(p) {
			continue
		}
		if ws, err := in.run(p, []string{"modprobe", "-q", module}, 10*time.Second); err != nil {
			in.logf("modprobe %s: %v", module, err)
		} else if !ws.Exited() || ws.ExitStatus() != 0 {
			in.logf("modprobe %s %s", module, describe(ws))
		}
		return
	}
}

// run starts path as root and waits for it, at most timeout; after that it
// is left running and an error says so.
func (in *initd) run(path string, argv []string, timeout time.Duration) (unix.WaitStatus, error) {
	_, ch, err := in.p.start(path, argv, &syscall.ProcAttr{
		Dir: "/", Env: []string{"PATH=" + defaultPath}, Files: in.stdio(),
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	select {
	case ws := <-ch:
		return ws, nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("%s still runs after %v", path, timeout)
	}
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// firstBoot runs the one-time set-up while its marker exists: the script
// where a shell can run it, else its steps here. The marker stays when a
// step fails, so that the next boot tries again.
func (in *initd) firstBoot() error {
	if _, err := os.Lstat(firstBootMarker); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if isExecutable(shellPath) && isExecutable(firstBootScript) {
		ws, err := in.run(firstBootScript, []string{firstBootScript}, 5*time.Minute)
		if err != nil {
			return err
		}
		if !ws.Exited() || ws.ExitStatus() != 0 {
			return fmt.Errorf("%s %s; it runs again at the next boot", firstBootScript, describe(ws))
		}
		return nil
	}
	if err := fillMachineID(machineIDPath); err != nil {
		return fmt.Errorf("%w; the first-boot set-up runs again at the next boot", err)
	}
	if err := os.Remove(firstBootMarker); err != nil {
		return err
	}
	in.logf("first-boot: done (no %s: machine-id set by ext4pack-init)", shellPath)
	return nil
}

// fillMachineID gives the guest a machine-id if it has none: systemd's
// form, 32 lowercase hex digits from a random UUID. "uninitialized" is
// systemd's own first-boot value and counts as none.
func fillMachineID(p string) error {
	if b, err := os.ReadFile(p); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" && s != "uninitialized" {
			return nil
		}
	}
	u, err := os.ReadFile("/proc/sys/kernel/random/uuid")
	if err != nil {
		return err
	}
	id := strings.ReplaceAll(strings.TrimSpace(string(u)), "-", "")
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("the kernel's UUID %q does not give 32 hex digits", u)
	}
	return replaceFile(p, []byte(id+"\n"), 0o444)
}

// superviseAgent runs the vsock agent as nobody and starts it again, after
// a pause, whenever it ends, until the shutdown.
func (in *initd) superviseAgent() {
	port := ""
	if b, err := os.ReadFile(vsockPortFile); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil {
			port = strconv.FormatUint(n, 10)
		} else {
			in.logf("%s: %q is not a port; the agent uses its default", vsockPortFile, b)
		}
	}
	argv := []string{agentPath}
	if port != "" {
		argv = append(argv, "--port="+port)
	}
	missing := false
	for !in.stopping.Load() {
		if !isExecutable(agentPath) {
			if !missing {
				in.logf("agent: %s is missing; looking again every 10 s", agentPath)
				missing = true
			}
			time.Sleep(10 * time.Second)
			continue
		}
		missing = false
		pid, ch, err := in.p.start(agentPath, argv, &syscall.ProcAttr{
			Dir: "/", Env: []string{"PATH=" + defaultPath}, Files: in.stdio(),
			Sys: &syscall.SysProcAttr{Setsid: true,
				Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}},
		})
		if err != nil {
			in.logf("agent: %v; trying again in %v", err, agentRestartDelay)
			time.Sleep(agentRestartDelay)
			continue
		}
		in.logf("agent: started as pid %d, uid %d", pid, nobody)
		ws := <-ch
		if in.stopping.Load() {
			return
		}
		in.logf("agent: %s; restarting in %v", describe(ws), agentRestartDelay)
		time.Sleep(agentRestartDelay)
	}
}

// startWorkload starts the image's command, if its config names one, and
// logs how it ends. It is not restarted: as in a container, its end is the
// workload's own business; the guest stays up until told to power off.
func (in *initd) startWorkload() error {
	b, err := os.ReadFile(imageConfigPath)
	if errors.Is(err, fs.ErrNotExist) {
		in.logf("no %s: no workload to run", imageConfigPath)
		return nil
	}
	if err != nil {
		return err
	}
	c, err := parseImageConfig(b)
	if err != nil {
		return err
	}
	passwd, _ := os.ReadFile("/etc/passwd")
	group, _ := os.ReadFile("/etc/group")
	w, err := planWorkload(c, passwd, group, isExecutable)
	if errors.Is(err, errNoWorkload) {
		in.logf("%s: %v: no workload to run", imageConfigPath, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", imageConfigPath, err)
	}
	groups := w.groups
	if groups == nil {
		groups = []uint32{}
	}
	pid, ch, err := in.p.start(w.path, w.argv, &syscall.ProcAttr{
		Dir: w.dir, Env: w.env, Files: in.stdio(),
		Sys: &syscall.SysProcAttr{Setsid: true,
			Credential: &syscall.Credential{Uid: w.uid, Gid: w.gid, Groups: groups}},
	})
	if err != nil {
		return fmt.Errorf("starting %q: %w", w.argv, err)
	}
	in.logf("workload: started %q as pid %d, uid %d, gid %d, in %s", w.argv, pid, w.uid, w.gid, w.dir)
	go in.safely("workload", func() {
		in.logf("workload: %s", describe(<-ch))
	})
	return nil
}

// shutdown stops every process, TERM then KILL, syncs, remounts / read-only
// and powers off. It never returns.
func (in *initd) shutdown(sig os.Signal) {
	in.logf("%v: stopping every process", sig)
	in.safely("TERM", func() {
		// kill(-1) reaches every process but PID 1. A stopped one must
		// be continued to act on TERM.
		unix.Kill(-1, unix.SIGTERM)
		unix.Kill(-1, unix.SIGCONT)
		if !in.waitNoChildren(termGrace) {
			in.logf("processes left after %v: sending KILL", termGrace)
			unix.Kill(-1, unix.SIGKILL)
			if !in.waitNoChildren(killGrace) {
				in.logf("processes still left after KILL; going on")
			}
		}
	})
	in.safely("remount", func() {
		unix.Sync()
		if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			in.logf("remounting / read-only: %v", err)
		}
		unix.Sync()
	})
	for {
		in.logf("powering off")
		err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		in.logf("power off: %v; trying again in 5 s", err)
		time.Sleep(5 * time.Second)
	}
}

// waitNoChildren reaps until no child is left, at most d.
func (in *initd) waitNoChildren(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if in.p.reap() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
