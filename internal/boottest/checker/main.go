//go:build linux

// Command boottest-check is the guest side of ext4pack's boot test
// (internal/boottest). It belongs to the test's rootfs, never to an image
// ext4pack makes. It is a static Go program, so that it runs in every guest
// of the matrix, the ones without a shell included.
//
// The guest's init starts it once the system is up: a systemd unit, an
// inittab `once` line, a runit service, or, under ext4pack-init, as the
// image's workload. It reads what to expect from /etc/boottest.json, checks
// the guest from inside, and reports one line per check
//
//	BOOTTEST CHECK <name> <ok|fail> <detail>
//
// then BOOTTEST PASS or BOOTTEST FAIL, on the report device (the second
// serial port where there is one) and on standard output. Then it asks the
// init to power off, the way that init is asked, and waits to be killed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// config is /etc/boottest.json, written by the test into the rootfs.
type config struct {
	Report   string `json:"report"`   // device for the report; "" for standard output only
	Addr     string `json:"addr"`     // eth0's address, "192.0.2.2/24"
	Hostname string `json:"hostname"` // the hostname ip= sets
	DNS      string `json:"dns"`      // a nameserver ip= sets
	Port     uint32 `json:"port"`     // the agent's vsock port
	// Restart says to kill the agent and wait for its init to restart it
	// (the checker must be able to kill it: root).
	Restart bool `json:"restart"`
	// Poweroff is how the init is asked to power off: "exit" (the unit
	// does it), "cmd:PATH", "signal:NAME" to PID 1, or "none" (the host
	// sends ctrl-alt-del).
	Poweroff string `json:"poweroff"`
	// Diagnose are commands whose output helps a person read a failed
	// boot (rc-status under OpenRC), run only when a check failed.
	Diagnose [][]string `json:"diagnose"`
	// Workload, under ext4pack-init: who and where the checker must be.
	Workload *struct {
		UID, GID uint32
		Dir      string
		Env      string // NAME=VALUE that must be in the environment
		Marker   string // printed on standard output, for the console
	} `json:"workload"`
}

const (
	agentBin   = "/usr/local/bin/banger-vsock-agent"
	marker     = "/var/lib/banger/first-boot-pending"
	probeDir   = "/var/lib/boottest"
	setuidFile = "/usr/local/share/boottest/setuid"
	ownedFile  = "/usr/local/share/boottest/owned"
	// vsockLocal is VMADDR_CID_LOCAL: the guest itself, through
	// vsock_loopback, since the host has no vhost-vsock.
	vsockLocal = 1
)

var (
	out    io.Writer = os.Stdout
	failed           = false
)

func report(name string, ok bool, format string, args ...any) {
	res := "ok"
	if !ok {
		res, failed = "fail", true
	}
	fmt.Fprintf(out, "BOOTTEST CHECK %s %s %s\n", name, res, fmt.Sprintf(format, args...))
}

func main() {
	b, err := os.ReadFile("/etc/boottest.json")
	var c config
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if c.Report != "" {
		if f, ferr := os.OpenFile(c.Report, os.O_WRONLY, 0); ferr == nil {
			out = io.MultiWriter(f, os.Stdout)
		} else {
			fmt.Printf("boottest-check: %v; reporting on standard output only\n", ferr)
		}
	}
	if err != nil {
		fmt.Fprintf(out, "BOOTTEST FAIL /etc/boottest.json: %v\n", err)
		finish(c)
	}
	if w := c.Workload; w != nil && w.Marker != "" {
		fmt.Println(w.Marker)
	}
	checkAll(c)
	if failed {
		for _, argv := range c.Diagnose {
			b, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
			fmt.Printf("boottest-check: %q (%v):\n%s\n", argv, err, b)
		}
		fmt.Fprintln(out, "BOOTTEST FAIL")
	} else {
		fmt.Fprintln(out, "BOOTTEST PASS")
	}
	finish(c)
}

func checkAll(c config) {
	// The root filesystem: the last mount of / in the table is the one in
	// use.
	fstype, opts := "", ""
	if f, err := os.Open("/proc/self/mounts"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fl := strings.Fields(sc.Text()); len(fl) >= 4 && fl[1] == "/" {
				fstype, opts = fl[2], fl[3]
			}
		}
		f.Close()
	}
	report("root-ext4", fstype == "ext4", "/ is %q (%s)", fstype, opts)
	probe := filepath.Join(probeDir, fmt.Sprintf("rw-probe-%d", os.Getpid()))
	werr := os.WriteFile(probe, []byte("x"), 0o644)
	if werr == nil {
		werr = os.Remove(probe)
	}
	report("root-rw", strings.HasPrefix(opts, "rw") && werr == nil, "options %s; writing %s: %v", opts, probe, werr)
	checkMode("setuid-kept", setuidFile, "0:0 4755")
	checkMode("owner-kept", ownedFile, "1234:42 640")

	_, err := os.Lstat(marker)
	report("first-boot-marker", os.IsNotExist(err), "%s: %v", marker, err)
	id, _ := os.ReadFile("/etc/machine-id")
	s := strings.TrimSpace(string(id))
	report("machine-id", len(s) == 32 && strings.Trim(s, "0123456789abcdef") == "", "/etc/machine-id is %q", s)

	args := bootArgs()
	if v, ok := args["boottest.grow"]; ok {
		checkGrown(v)
	}
	checkNetwork(c)
	checkAgent(c)
	if args["boottest.load"] == "1" {
		checkLoad(c)
	}
	if w := c.Workload; w != nil {
		cwd, _ := os.Getwd()
		env := false
		for _, kv := range os.Environ() {
			env = env || kv == w.Env
		}
		ok := uint32(os.Getuid()) == w.UID && uint32(os.Getgid()) == w.GID && cwd == w.Dir && env
		report("workload-identity", ok, "uid %d gid %d cwd %s, %s set: %v (want %d %d %s)",
			os.Getuid(), os.Getgid(), cwd, w.Env, env, w.UID, w.GID, w.Dir)
	}
}

// bootArgs returns the kernel command line's boottest.* arguments: the host
// asks for a boot's extra checks there, since the image, and with it
// /etc/boottest.json, is the same for every boot of a guest.
func bootArgs() map[string]string {
	args := map[string]string{}
	b, _ := os.ReadFile("/proc/cmdline")
	for _, w := range strings.Fields(string(b)) {
		if k, v, ok := strings.Cut(w, "="); ok && strings.HasPrefix(k, "boottest.") {
			args[k] = v
		}
	}
	return args
}

// checkGrown is issue 19's: the disk was made larger than the image, whose
// size was orig bytes, so / must now span the whole device, less the
// filesystem's own metadata, and a file larger than the whole image must
// fit.
func checkGrown(orig string) {
	origBytes, err := strconv.ParseInt(orig, 10, 64)
	if err != nil {
		report("root-grown", false, "boottest.grow=%q: %v", orig, err)
		return
	}
	var st unix.Stat_t
	var fs unix.Statfs_t
	if err := unix.Stat("/", &st); err != nil {
		report("root-grown", false, "stat /: %v", err)
		return
	}
	if err := unix.Statfs("/", &fs); err != nil {
		report("root-grown", false, "statfs /: %v", err)
		return
	}
	sizeFile := fmt.Sprintf("/sys/dev/block/%d:%d/size", unix.Major(st.Dev), unix.Minor(st.Dev))
	b, err := os.ReadFile(sizeFile)
	sectors, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || perr != nil {
		report("root-grown", false, "%s: %v %v", sizeFile, err, perr)
		return
	}
	device := sectors * 512
	total := int64(fs.Blocks) * fs.Bsize
	// The metadata of a grown image is under 5%: inode tables (1/64 at
	// one inode per 16 KiB, less in the added groups), bitmaps, the
	// journal.
	spans := total <= device && total >= device/100*95
	probe := filepath.Join(probeDir, fmt.Sprintf("grow-probe-%d", os.Getpid()))
	werr := writeAllocated(probe, origBytes+1<<20)
	os.Remove(probe)
	report("root-grown", spans && werr == nil, "device %d bytes, / %d bytes (%.1f%%), %d free; a file of %d bytes (the image was %d): %v",
		device, total, 100*float64(total)/float64(device), int64(fs.Bavail)*fs.Bsize, origBytes+1<<20, origBytes, werr)
}

// writeAllocated makes a file of size bytes whose blocks are all allocated
// (fallocate: it would fail with ENOSPC if they were not there), and writes
// its last block.
func writeAllocated(p string, size int64) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		return os.NewSyscallError("fallocate", err)
	}
	if _, err := f.WriteAt(make([]byte, 4096), size-4096); err != nil {
		return err
	}
	return f.Sync()
}

// The agent load test (issue 19): loadClients clients at once, each making
// at least loadRequests requests on a connection of its own, for at least
// loadTime, against a second agent started here on loadPort, while the
// guest's CPUs are kept busy and that agent collects garbage all the time.
const (
	loadClients  = 64
	loadRequests = 100
	loadTime     = 20 * time.Second
	loadPort     = 1025
)

// checkLoad runs the agent load test. The agent is the guest's own binary,
// started with GOGC=1, so that its garbage collector runs after every
// allocation of any size: each cycle stops the world and preempts its
// running goroutines with a signal (SIGURG), the signal that interrupted
// vsock's accept4; GODEBUG=gctrace=1 prints a line per cycle, counted
// here. Busy goroutines keep both vCPUs loaded, so that the agent's threads
// are also preempted by the guest's scheduler. Every request must succeed.
func checkLoad(c config) {
	args := []string{fmt.Sprintf("--port=%d", loadPort)}
	if os.Getuid() == 0 {
		args = append(args, "--user=65534:65534")
	}
	agent := exec.Command(agentBin, args...)
	agent.Env = []string{"GOGC=1", "GODEBUG=gctrace=1"}
	stderr, err := agent.StderrPipe()
	if err == nil {
		err = agent.Start()
	}
	if err != nil {
		report("agent-load", false, "starting %s: %v", agentBin, err)
		return
	}
	var gcs atomic.Int64
	var mu sync.Mutex
	var said []string
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "gc ") {
				gcs.Add(1)
				continue
			}
			mu.Lock()
			said = append(said, sc.Text())
			mu.Unlock()
		}
	}()
	lc := config{Port: loadPort}
	if _, err := agentGet(lc, "/healthz", time.Now().Add(20*time.Second)); err != nil {
		agent.Process.Kill()
		agent.Wait()
		report("agent-load", false, "the second agent does not answer: %v", err)
		return
	}
	var stop atomic.Bool
	for range 2 {
		go func() {
			for x := 0; !stop.Load(); x++ {
			}
		}()
	}
	var ok, failed atomic.Int64
	var firstErr string
	var wg sync.WaitGroup
	start := time.Now()
	gcsBefore := gcs.Load()
	for i := range loadClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{
				Timeout: 60 * time.Second,
				Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
					return dialVsock(vsockLocal, loadPort)
				}, DisableKeepAlives: true},
			}
			for j := 0; j < loadRequests || time.Since(start) < loadTime; j++ {
				path := []string{"/healthz", "/ports"}[(i+j)%2]
				resp, err := client.Get("http://agent" + path)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s: status %d", path, resp.StatusCode)
					}
				}
				if err != nil {
					if failed.Add(1) == 1 {
						mu.Lock()
						firstErr = err.Error()
						mu.Unlock()
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	cycles := gcs.Load() - gcsBefore
	stop.Store(true)
	agent.Process.Signal(syscall.SIGTERM)
	agent.Wait()
	<-logDone
	// The agent says nothing while it serves: a line about accept4 means
	// it paused or listened anew.
	var accepts []string
	for _, l := range said {
		if strings.Contains(l, "accept") || strings.Contains(l, "retrying") {
			accepts = append(accepts, l)
		}
	}
	report("agent-load", failed.Load() == 0 && ok.Load() >= loadClients*loadRequests && took >= loadTime && cycles > 0 && len(accepts) == 0,
		"%d clients: %d requests answered, %d failed (first: %v) in %v; %d GC cycles in the agent meanwhile; its accept lines: %q; "+
			"client connects begun again after EINTR: %d",
		loadClients, ok.Load(), failed.Load(), firstErr, took.Round(100*time.Millisecond), cycles, accepts, connectEINTR.Load())
}

func checkMode(name, p, want string) {
	var st unix.Stat_t
	got := ""
	if err := unix.Stat(p, &st); err != nil {
		got = err.Error()
	} else {
		got = fmt.Sprintf("%d:%d %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	report(name, got == want, "%s is %s, want %s", p, got, want)
}

func checkNetwork(c config) {
	ifc, err := net.InterfaceByName("eth0")
	var addrs []string
	if err == nil {
		as, _ := ifc.Addrs()
		for _, a := range as {
			addrs = append(addrs, a.String())
		}
	}
	has := false
	for _, a := range addrs {
		has = has || a == c.Addr
	}
	report("network-address", has, "eth0 has %v (%v), want %s", addrs, err, c.Addr)
	h, _ := os.ReadFile("/proc/sys/kernel/hostname")
	report("network-hostname", strings.TrimSpace(string(h)) == c.Hostname, "hostname %q, want %q", strings.TrimSpace(string(h)), c.Hostname)
	rc, err := os.ReadFile("/etc/resolv.conf")
	report("network-resolv", strings.Contains(string(rc), "nameserver "+c.DNS+"\n"), "/etc/resolv.conf: %q %v", rc, err)
}

// agentGet asks the agent for path over vsock, through the guest's
// vsock_loopback, trying until deadline: an agent started late, or being
// restarted, answers a little later.
func agentGet(c config, path string, deadline time.Time) (string, error) {
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			return dialVsock(vsockLocal, c.Port)
		}, DisableKeepAlives: true},
	}
	var last error
	for {
		resp, err := client.Get("http://agent" + path)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == 200 {
				return string(b), nil
			}
			err = fmt.Errorf("status %d, %v: %q", resp.StatusCode, rerr, b)
		}
		last = err
		if time.Now().After(deadline) {
			return "", last
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// connectEINTR counts the connects dialVsock began again after a signal.
var connectEINTR atomic.Int64

// dialVsock connects to port of cid. A blocking vsock connect sleeps until
// the peer answers, and a signal in that sleep (the Go runtime's own
// preemption signal) fails it with EINTR, having cancelled it: the client
// begins again on a new socket, as Go's net package would.
func dialVsock(cid, port uint32) (net.Conn, error) {
	for {
		fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, os.NewSyscallError("socket AF_VSOCK", err)
		}
		err = unix.Connect(fd, &unix.SockaddrVM{CID: cid, Port: port})
		if err == unix.EINTR {
			unix.Close(fd)
			connectEINTR.Add(1)
			continue
		}
		if err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("connect vsock", err)
		}
		// Non-blocking after the connect: os.File then waits on the
		// poller, so that the client's timeout, which closes the
		// connection, ends a read that hangs.
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("setnonblock", err)
		}
		return &fdConn{os.NewFile(uintptr(fd), "vsock")}, nil
	}
}

// fdConn is a connected socket as a net.Conn, enough for net/http.
type fdConn struct{ f *os.File }

func (c *fdConn) Read(b []byte) (int, error)         { return c.f.Read(b) }
func (c *fdConn) Write(b []byte) (int, error)        { return c.f.Write(b) }
func (c *fdConn) Close() error                       { return c.f.Close() }
func (c *fdConn) LocalAddr() net.Addr                { return &net.UnixAddr{Name: "vsock", Net: "vsock"} }
func (c *fdConn) RemoteAddr() net.Addr               { return &net.UnixAddr{Name: "vsock", Net: "vsock"} }
func (c *fdConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *fdConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *fdConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// agentPids returns the agent's processes and their uids, from /proc.
func agentPids() map[int]int {
	pids := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// comm holds the first 15 bytes of the name.
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		if strings.TrimSpace(string(comm)) != "banger-vsock-ag" {
			continue
		}
		status, _ := os.ReadFile("/proc/" + e.Name() + "/status")
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "Uid:" {
				uid, _ := strconv.Atoi(f[1])
				pids[pid] = uid
			}
		}
	}
	return pids
}

func checkAgent(c config) {
	v, err := exec.Command(agentBin, "--version").CombinedOutput()
	report("agent-version", err == nil && strings.HasPrefix(string(v), "banger-vsock-agent "), "%q %v", strings.TrimSpace(string(v)), err)

	// The agent may start after the checker (runsvdir starts both at
	// once); it answers within a few seconds even under TCG, and the wait
	// is what a negative control costs.
	body, err := agentGet(c, "/healthz", time.Now().Add(20*time.Second))
	healthy := err == nil && body == "ok\n"
	report("agent-healthz", healthy, "GET /healthz over vsock %d:%d: %q %v", vsockLocal, c.Port, body, err)

	// A TCP port opened here must show in /ports.
	// tcp4: Go would make a wildcard "tcp" listener a dual-stack IPv6 one,
	// which /proc/net/tcp6 lists.
	ln, lerr := net.Listen("tcp4", "0.0.0.0:0")
	port := 0
	if lerr == nil {
		port = ln.Addr().(*net.TCPAddr).Port
		defer ln.Close()
	}
	wait := 10 * time.Second
	if !healthy {
		wait = 0
	}
	body, err = agentGet(c, "/ports", time.Now().Add(wait))
	var ports []struct {
		Proto string `json:"proto"`
		Port  int    `json:"port"`
	}
	listed := false
	if err == nil {
		err = json.Unmarshal([]byte(body), &ports)
		for _, p := range ports {
			listed = listed || (p.Proto == "tcp" && p.Port == port)
		}
	}
	report("agent-ports", lerr == nil && listed, "tcp port %d listed: %v (%v, %v)", port, listed, lerr, err)

	pids := agentPids()
	unpriv := len(pids) > 0
	for _, uid := range pids {
		unpriv = unpriv && uid != 0
	}
	report("agent-unprivileged", unpriv, "agent pids and uids %v", pids)

	if !c.Restart {
		return
	}
	if len(pids) == 0 {
		report("agent-restart", false, "no agent running to kill")
		return
	}
	for pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	start := time.Now()
	var again map[int]int
	restarted := false
	for time.Since(start) < 30*time.Second && !restarted {
		time.Sleep(250 * time.Millisecond)
		again = agentPids()
		for pid := range again {
			if _, old := pids[pid]; !old {
				restarted = true
			}
		}
	}
	body, err = agentGet(c, "/healthz", time.Now().Add(30*time.Second))
	report("agent-restart", len(pids) > 0 && restarted && err == nil, "killed %v; %v later running %v; /healthz %q %v",
		pids, time.Since(start).Round(100*time.Millisecond), again, body, err)
}

// finish asks the init to power off, then waits to be killed by the
// shutdown, so that no init restarts it meanwhile.
func finish(c config) {
	switch mode := c.Poweroff; {
	case mode == "exit":
		os.Exit(0)
	case mode == "none":
		// The host sends ctrl-alt-del once it has read the verdict.
		os.Exit(0)
	case strings.HasPrefix(mode, "cmd:"):
		cmd := exec.Command(strings.TrimPrefix(mode, "cmd:"))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Printf("boottest-check: %s: %v\n", mode, err)
		}
	case strings.HasPrefix(mode, "signal:"):
		sig := unix.SignalNum("SIG" + strings.TrimPrefix(mode, "signal:"))
		if err := syscall.Kill(1, sig); err != nil {
			fmt.Printf("boottest-check: %s: %v\n", mode, err)
		}
	default:
		fmt.Printf("boottest-check: unknown poweroff %q\n", mode)
	}
	for {
		time.Sleep(time.Hour)
	}
}
