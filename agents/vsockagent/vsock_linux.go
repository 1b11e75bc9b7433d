//go:build !ext4pack_portable

package main

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// vsockAddr is one end of an AF_VSOCK connection.
type vsockAddr struct{ cid, port uint32 }

func (a vsockAddr) Network() string { return "vsock" }
func (a vsockAddr) String() string  { return fmt.Sprintf("%d:%d", a.cid, a.port) }

// listenVsock listens on port of every local CID. The package net does not
// know AF_VSOCK (net.FileListener refuses it), so the socket is driven through
// os.File, which still puts a non-blocking descriptor on the runtime's poller:
// Accept parks the goroutine instead of a thread, and Close wakes it. logf
// tells of accepts paused for want of a resource.
func listenVsock(port uint32, logf func(format string, args ...any)) (net.Listener, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket AF_VSOCK", err)
	}
	sa, err := bindListen(fd, port)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return newSocketListener(fd, vsockAddr{sa.CID, sa.Port}, logf)
}

// bindListen binds fd to port, listens, and returns the bound address, whose
// port differs from port when that is VMADDR_PORT_ANY (as tests use it).
func bindListen(fd int, port uint32) (*unix.SockaddrVM, error) {
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}); err != nil {
		return nil, os.NewSyscallError(fmt.Sprintf("bind vsock port %d", port), err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, os.NewSyscallError("getsockname", err)
	}
	vm, ok := sa.(*unix.SockaddrVM)
	if !ok {
		return nil, fmt.Errorf("getsockname: %T is not a vsock address", sa)
	}
	return vm, nil
}

// socketListener is a listening, non-blocking stream socket as a
// net.Listener: AF_VSOCK in the guest, AF_UNIX in the tests.
type socketListener struct {
	f    *os.File
	rc   syscall.RawConn
	addr net.Addr
	logf func(format string, args ...any)
	// accept4 is unix.Accept4; tests put errors in its way.
	accept4 func(fd int, flags int) (int, unix.Sockaddr, error)
	// closed is closed by Close, to end a pause between accepts.
	closed    chan struct{}
	closeOnce sync.Once
}

// newSocketListener takes over fd, a non-blocking socket that listens.
func newSocketListener(fd int, addr net.Addr, logf func(format string, args ...any)) (*socketListener, error) {
	f := os.NewFile(uintptr(fd), "listener")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &socketListener{f: f, rc: rc, addr: addr, logf: logf, accept4: unix.Accept4, closed: make(chan struct{})}, nil
}

// Pauses after an accept that failed for want of a resource (a descriptor,
// memory): they double from the first to the last, as net/http's do.
const (
	minAcceptPause = 5 * time.Millisecond
	maxAcceptPause = time.Second
)

// Accept returns the next connection. An error that concerns one call and
// not the listener never ends it, so that whatever is queued is served:
//
//   - EINTR: a signal came while the call was in the kernel. Linux 6.1's
//     vsock_accept, even for a non-blocking listener, sleeps interruptibly
//     until the next timer tick when its queue is empty (newer kernels
//     return EAGAIN at once), and a signal in that sleep fails the call
//     with EINTR, which SA_RESTART does not restart (sock_intr_errno(0)).
//     The Go runtime signals its own threads (SIGURG) to preempt a
//     goroutine that ran 10 ms, and for the GC; one sent as the goroutine
//     enters accept4 lands there.
//   - ECONNABORTED: a queued connection went away before it was taken.
//
// Both are retried at once, within the same wait on the poller: the poller
// is edge-triggered, so waiting for readiness again could sleep on
// connections already queued. EMFILE, ENFILE, ENOBUFS and ENOMEM are retried
// after a pause that lets the guest free the resource. Any other error is
// returned, and the caller listens anew.
func (l *socketListener) Accept() (net.Conn, error) {
	pause := time.Duration(0)
	for {
		var (
			nfd  int
			sa   unix.Sockaddr
			aerr error
		)
		// rc.Read calls the function at once, and again each time the
		// poller says the socket is readable, until it returns true.
		err := l.rc.Read(func(fd uintptr) bool {
			for {
				nfd, sa, aerr = l.accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
				if aerr != unix.EINTR && aerr != unix.ECONNABORTED {
					return aerr != unix.EAGAIN
				}
			}
		})
		if err != nil {
			return nil, err // os.ErrClosed after Close, which http.Server expects
		}
		switch aerr {
		case nil:
			return newVsockConn(nfd, l.addr, remoteAddr(sa)), nil
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			pause = min(max(2*pause, minAcceptPause), maxAcceptPause)
			l.logf("accept4: %v; accepting again in %v", aerr, pause)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-l.closed:
				t.Stop()
				return nil, net.ErrClosed
			}
		default:
			return nil, os.NewSyscallError("accept4", aerr)
		}
	}
}

// remoteAddr is a connection's peer as Accept returns it.
func remoteAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrVM:
		return vsockAddr{a.CID, a.Port}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unix"}
	}
	return vsockAddr{}
}

func (l *socketListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.f.Close()
}

func (l *socketListener) Addr() net.Addr { return l.addr }

// vsockConn is a connected AF_VSOCK socket as a net.Conn. It wraps os.File
// instead of embedding it, so that io.Copy does not take os.File's ReadFrom,
// which is meant for files.
type vsockConn struct {
	f             *os.File
	local, remote net.Addr
}

// newVsockConn takes over fd, a connected non-blocking socket.
func newVsockConn(fd int, local, remote net.Addr) *vsockConn {
	return &vsockConn{f: os.NewFile(uintptr(fd), "vsock-conn"), local: local, remote: remote}
}

func (c *vsockConn) Read(b []byte) (int, error)         { return c.f.Read(b) }
func (c *vsockConn) Write(b []byte) (int, error)        { return c.f.Write(b) }
func (c *vsockConn) Close() error                       { return c.f.Close() }
func (c *vsockConn) LocalAddr() net.Addr                { return c.local }
func (c *vsockConn) RemoteAddr() net.Addr               { return c.remote }
func (c *vsockConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *vsockConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *vsockConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// dropPrivileges makes the process uid:gid with no supplementary groups.
// Go applies each call to every thread of the process.
func dropPrivileges(uid, gid int) error {
	if err := syscall.Setgroups(nil); err != nil {
		return os.NewSyscallError("setgroups", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return os.NewSyscallError("setgid", err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return os.NewSyscallError("setuid", err)
	}
	return nil
}
