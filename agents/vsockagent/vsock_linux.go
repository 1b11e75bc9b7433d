//go:build !ext4pack_portable

package main

import (
	"fmt"
	"golang.org/x/sys/unix"
	"net"
	"os"
	"syscall"
	"time"
)

type vsockAddr struct{ cid, port uint32 } // one end of an AF_VSOCK connection

func (a vsockAddr) Network() string { return "vsock" }
func (a vsockAddr) String() string  { return fmt.Sprintf("%d:%d", a.cid, a.port) }

// listenVsock listens on port of every local CID. The package net does not
// know AF_VSOCK (net.FileListener refuses it), so the socket is driven through
// os.File, which still puts a non-blocking descriptor on the runtime's poller:
// Accept parks the goroutine instead of a thread, and Close wakes it.
func listenVsock(port uint32) (net.Listener, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket AF_VSOCK", err)
	}
	sa, err := bindListen(fd, port)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "vsock-listener")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &vsockListener{f: f, rc: rc, addr: vsockAddr{sa.CID, sa.Port}}, nil
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

type vsockListener struct {
	f    *os.File
	rc   syscall.RawConn
	addr vsockAddr
}

func (l *vsockListener) Accept() (net.Conn, error) {
	var (
		nfd  int
		sa   unix.Sockaddr
		aerr error
	)
	// rc.Read calls the function again each time the poller says the socket
	// is readable, until it returns true.
	err := l.rc.Read(func(fd uintptr) bool {
		nfd, sa, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN
	})
	if err != nil {
		return nil, err // os.ErrClosed after Close, which http.Server expects
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept4", aerr)
	}
	remote := vsockAddr{}
	if vm, ok := sa.(*unix.SockaddrVM); ok {
		remote = vsockAddr{vm.CID, vm.Port}
	}
	return newVsockConn(nfd, l.addr, remote), nil
}

func (l *vsockListener) Close() error   { return l.f.Close() }
func (l *vsockListener) Addr() net.Addr { return l.addr }

// vsockConn is a connected AF_VSOCK socket as a net.Conn. It wraps os.File
// instead of embedding it, so that io.Copy does not take os.File's ReadFrom,
// which is meant for files.
type vsockConn struct {
	f             *os.File
	local, remote vsockAddr
}

// newVsockConn takes over fd, a connected non-blocking AF_VSOCK socket.
func newVsockConn(fd int, local, remote vsockAddr) *vsockConn {
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
