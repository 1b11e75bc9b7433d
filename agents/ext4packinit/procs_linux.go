package main

import (
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// procs starts processes and reaps every child of PID 1, its own and the
// orphans the kernel hands it. All waiting happens in reap, which takes
// whatever wait4 gives; a process started here gets its status through a
// channel. os/exec is not used: its Wait would race with reap for the same
// children.
type procs struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
}

func newProcs() *procs { return &procs{waiters: map[int]chan unix.WaitStatus{}} }

// start forks and executes path. The lock is held across the fork, so reap
// cannot take the child's status before its channel is registered.
func (p *procs) start(path string, argv []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	p.waiters[pid] = ch
	return pid, ch, nil
}

// reap collects every child that has exited, as tini does: wait4 in a loop
// until it says none is left to collect now. It returns whether no child
// is left at all (ECHILD).
func (p *procs) reap() (noChildren bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err == unix.ECHILD
		case pid <= 0:
			return false
		}
		if ch, ok := p.waiters[pid]; ok {
			ch <- ws // buffered: never blocks
			delete(p.waiters, pid)
		}
	}
}

// describe says how a process ended, for the log.
func describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exited with status " + itoa(ws.ExitStatus())
	case ws.Signaled():
		s := "killed by signal " + unix.SignalName(ws.Signal())
		if ws.CoreDump() {
			s += " (core dumped)"
		}
		return s
	}
	return "ended (wait status " + itoa(int(ws)) + ")"
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
