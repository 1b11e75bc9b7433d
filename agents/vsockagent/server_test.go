package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// listenUnix stands in for AF_VSOCK where the kernel has no vsock loopback.
func listenUnix(t *testing.T) (net.Listener, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	return ln, sock
}

func unixClient(sock string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
}

// get returns the status and body of a request, failing the test if it
// cannot be made.
func get(t *testing.T, c *http.Client, method, path string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "http://agent"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// startServer serves h on ln until the test ends, and checks then that
// serveListener returned nil.
func startServer(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveListener(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveListener: %v", err)
		}
	})
}

// checkAPI runs the agent's HTTP contract against a served newHandler(dir).
func checkAPI(t *testing.T, c *http.Client) {
	t.Run("healthz", func(t *testing.T) {
		status, body, hdr := get(t, c, "GET", "/healthz")
		if status != http.StatusOK || body != "ok\n" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
			t.Errorf("got %d %q %q, want 200 \"ok\\n\" text/plain", status, body, hdr.Get("Content-Type"))
		}
	})
	t.Run("ports", func(t *testing.T) {
		status, body, hdr := get(t, c, "GET", "/ports")
		if status != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %q %q", status, body, hdr.Get("Content-Type"))
		}
		var got []port
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		want := []port{{"tcp", 22, "0.0.0.0"}, {"udp6", 546, "fe80::5054:ff:fea3:e1b8"}}
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		if !strings.Contains(body, `{"proto":"tcp","port":22,"address":"0.0.0.0"}`) {
			t.Errorf("body %q does not use the documented field names", body)
		}
	})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/healthz", http.StatusMethodNotAllowed},
		{"DELETE", "/ports", http.StatusMethodNotAllowed},
		{"GET", "/", http.StatusNotFound},
		{"GET", "/exec", http.StatusNotFound},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			if status, _, _ := get(t, c, tc.method, tc.path); status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
		})
	}
}

// apiTables is the /proc/net the API tests serve.
func apiTables(t *testing.T) string {
	skipUnlessLittleEndian(t)
	return writeTables(t, map[string]string{
		"tcp":  strings.Split(tcpTable, "\n")[0] + "\n" + strings.Split(tcpTable, "\n")[1] + "\n",
		"udp6": udp6Table,
	})
}

func TestAPIOverUnixSocket(t *testing.T) {
	dir := apiTables(t)
	ln, sock := listenUnix(t)
	startServer(t, ln, newHandler(dir))
	checkAPI(t, unixClient(sock))
}

func TestPortsError(t *testing.T) {
	dir := writeTables(t, map[string]string{"tcp": "header\nnot a socket line\n"})
	ln, sock := listenUnix(t)
	startServer(t, ln, newHandler(dir))
	status, body, _ := get(t, unixClient(sock), "GET", "/ports")
	if status != http.StatusInternalServerError || !strings.Contains(body, "/proc/net/tcp line 2") {
		t.Errorf("got %d %q, want 500 naming the bad line", status, body)
	}
}

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logBuffer) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// TestServeRetries plays a guest whose vsock transport appears late: the
// first listens fail, and serve must keep trying, then serve, then stop
// cleanly when its context ends.
func TestServeRetries(t *testing.T) {
	ln, sock := listenUnix(t)
	errNoTransport := errors.New("socket AF_VSOCK: address family not supported by protocol")
	calls := 0
	listen := func() (net.Listener, error) {
		calls++
		if calls <= 3 {
			return nil, errNoTransport
		}
		return ln, nil
	}
	var logs logBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := newHandler(t.TempDir())
	go func() { done <- serve(ctx, listen, h, logs.logf, time.Millisecond, 4*time.Millisecond) }()

	c := unixClient(sock)
	if status, _, _ := get(t, c, "GET", "/healthz"); status != http.StatusOK {
		t.Errorf("healthz status %d", status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v, want nil after the context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after the context ended")
	}
	if n := logs.count("retrying"); n != 3 {
		t.Errorf("%d retries logged, want 3: %q", n, logs.lines)
	}
	if logs.count("listening on unix") != 1 {
		t.Errorf("no listening line: %q", logs.lines)
	}
}

func TestServeStopsWhileRetrying(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	listen := func() (net.Listener, error) {
		cancel()
		return nil, errors.New("no transport")
	}
	var logs logBuffer
	if err := serve(ctx, listen, newHandler(t.TempDir()), logs.logf, time.Hour, time.Hour); err != nil {
		t.Errorf("serve = %v, want nil", err)
	}
}

func TestServeUnsupported(t *testing.T) {
	listen := func() (net.Listener, error) {
		return nil, fmt.Errorf("AF_VSOCK needs Linux: %w", errors.ErrUnsupported)
	}
	var logs logBuffer
	err := serve(context.Background(), listen, newHandler(t.TempDir()), logs.logf, time.Millisecond, time.Millisecond)
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("serve = %v, want ErrUnsupported at once", err)
	}
}
