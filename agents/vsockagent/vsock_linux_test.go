//go:build !ext4pack_portable

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
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
	ln, err := listenVsock(unix.VMADDR_PORT_ANY, t.Logf)
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

// listenUnixSocket is a socketListener over a non-blocking AF_UNIX socket:
// the same accept loop as the agent's AF_VSOCK one, on any host.
func listenUnixSocket(t *testing.T, logf func(string, ...any)) (*socketListener, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	ln, err := newSocketListener(fd, &net.UnixAddr{Name: sock, Net: "unix"}, logf)
	if err != nil {
		t.Fatal(err)
	}
	return ln, sock
}

// injectErrors makes every other accept4 of ln fail with the next of errs,
// before it takes a connection, as an interrupted call does. It returns
// how many times each error was injected.
func injectErrors(ln *socketListener, errs ...error) func() map[error]int {
	var mu sync.Mutex
	calls := 0
	counts := map[error]int{}
	ln.accept4 = func(fd, flags int) (int, unix.Sockaddr, error) {
		mu.Lock()
		calls++
		n := calls
		var e error
		if n%2 == 1 {
			e = errs[(n/2)%len(errs)]
			counts[e]++
		}
		mu.Unlock()
		if e != nil {
			return -1, nil, e
		}
		return unix.Accept4(fd, flags)
	}
	return func() map[error]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(counts)
	}
}

// TestAcceptTransientErrors is issue 19's: one interrupted accept4 closed
// the agent's listener and reset every connection queued on it. Here 64
// connections queue before the server starts, each with a request in it;
// every other accept4 fails with a transient error; every request must be
// answered, and the listener must stay open.
func TestAcceptTransientErrors(t *testing.T) {
	dir := apiTables(t)
	for _, tc := range []struct {
		name string
		errs []error
	}{
		{"EINTR", []error{unix.EINTR}},
		{"ECONNABORTED", []error{unix.ECONNABORTED}},
		{"resources", []error{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM}},
		{"mixed", []error{unix.EINTR, unix.ECONNABORTED, unix.EINTR, unix.EMFILE, unix.ENOBUFS}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			ln, sock := listenUnixSocket(t, logs.logf)
			injected := injectErrors(ln, tc.errs...)
			const clients = 64
			conns := make([]net.Conn, clients)
			for i := range conns {
				c, err := net.Dial("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				path := []string{"/healthz", "/ports"}[i%2]
				if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n", path); err != nil {
					t.Fatal(err)
				}
				conns[i] = c
			}
			startServer(t, ln, newHandler(dir))
			for i, c := range conns {
				c.SetDeadline(time.Now().Add(20 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Errorf("connection %d: %v", i, err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("connection %d: status %d", i, resp.StatusCode)
				}
			}
			got := injected()
			for _, e := range tc.errs {
				if got[e] == 0 {
					t.Errorf("%v was never injected: %v", e, got)
				}
			}
			resources := 0
			for _, e := range []error{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM} {
				resources += got[e]
			}
			if n := logs.count("accepting again in"); n != resources {
				t.Errorf("%d pauses logged for %d resource errors: %q", n, resources, logs.lines)
			}
			t.Logf("injected %v", got)
		})
	}
}

// TestAcceptOtherErrors checks the other side: an error that is not
// transient ends Accept, so that serve listens anew, and Close ends a pause.
func TestAcceptOtherErrors(t *testing.T) {
	t.Run("EINVAL", func(t *testing.T) {
		ln, _ := listenUnixSocket(t, t.Logf)
		defer ln.Close()
		injectErrors(ln, unix.EINVAL)
		if c, err := ln.Accept(); !errors.Is(err, unix.EINVAL) {
			t.Errorf("Accept = %v, %v; want EINVAL", c, err)
		}
	})
	t.Run("close while paused", func(t *testing.T) {
		ln, _ := listenUnixSocket(t, t.Logf)
		ln.accept4 = func(int, int) (int, unix.Sockaddr, error) { return -1, nil, unix.EMFILE }
		done := make(chan error, 1)
		go func() {
			_, err := ln.Accept()
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		ln.Close()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
				t.Errorf("Accept after Close = %v, want a closed error", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Accept did not return after Close")
		}
	})
}
