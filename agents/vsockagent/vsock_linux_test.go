//go:build !ext4pack_portable

package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// vsockStub says the agent was built with vsock_other.go, which cannot
// serve: not here, vsock_linux.go serves.
const vsockStub = false

// dialVsock connects to port of cid. Tests only: the agent never dials.
func dialVsock(cid, port uint32) (net.Conn, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// A blocking connect keeps this short; the socket goes non-blocking after
	// it, so that os.File can use the poller and deadlines.
	if err := unix.Connect(fd, &unix.SockaddrVM{CID: cid, Port: port}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	return newVsockConn(fd, vsockAddr{}, vsockAddr{cid, port}), nil
}

// TestAPIOverVsockLoopback serves the agent on a real AF_VSOCK socket and
// talks to it through VMADDR_CID_LOCAL. That needs a kernel with a vsock
// loopback transport (vsock_loopback), which CI's host kernel lacks; the
// test then skips, in CI too, since the real listener is tested where the
// feature exists: in every guest the boot matrix boots
// (internal/boottest TestBoot), the checker asks the agent GET /healthz and
// GET /ports over the guest's vsock_loopback (its agent-healthz and
// agent-ports checks), and a negative control without the agent shows
// that those checks fail. TestAPIOverUnixSocket covers the HTTP side here.
func TestAPIOverVsockLoopback(t *testing.T) {
	const elsewhere = "; the real AF_VSOCK listener is tested in the booted guests instead: internal/boottest TestBoot, checks agent-healthz and agent-ports (make boot-test)"
	dir := apiTables(t)
	ln, err := listenVsock(unix.VMADDR_PORT_ANY)
	if err != nil {
		t.Skipf("no AF_VSOCK listener on this kernel: %v%s", err, elsewhere)
	}
	port := ln.Addr().(vsockAddr).port
	probe, err := dialVsock(unix.VMADDR_CID_LOCAL, port)
	if err != nil {
		ln.Close()
		t.Skipf("no vsock loopback transport (vsock_loopback) on this kernel: %v%s", err, elsewhere)
	}
	probe.Close()

	startServer(t, ln, newHandler(dir))
	c := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			return dialVsock(unix.VMADDR_CID_LOCAL, port)
		}},
	}
	checkAPI(t, c)
}
