package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// newHandler serves /healthz and /ports, reading the socket tables from the
// directory procNet (/proc/net in the guest, a temporary one in tests).
func newHandler(procNet string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// A failed write means the client went away; there is no one left
		// to tell, here or below.
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /ports", func(w http.ResponseWriter, _ *http.Request) {
		ports, err := readPorts(procNet)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body, err := json.Marshal(ports)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(body, '\n'))
	})
	return mux
}

// serve listens with listen and serves h until ctx ends, then shuts down and
// returns nil. A failed listen, or a listener that fails later, is retried
// after a delay that doubles from minDelay up to maxDelay: at boot the guest
// may have no vsock transport yet. Only errors.ErrUnsupported from listen is
// final, since retrying cannot cure it.
func serve(ctx context.Context, listen func() (net.Listener, error), h http.Handler,
	logf func(format string, args ...any), minDelay, maxDelay time.Duration) error {
	delay := minDelay
	for {
		ln, err := listen()
		if errors.Is(err, errors.ErrUnsupported) {
			return err
		}
		if err == nil {
			logf("listening on %s %s", ln.Addr().Network(), ln.Addr())
			delay = minDelay
			if err = serveListener(ctx, ln, h); err == nil {
				return nil
			}
		}
		logf("%v; retrying in %v", err, delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, maxDelay)
	}
}

// shutdownGrace is how long a stopping agent lets requests in flight finish.
// systemd waits 90 seconds before SIGKILL, so this is well inside.
const shutdownGrace = 5 * time.Second

// serveListener serves h on ln until ctx ends, when it returns nil, or until
// ln fails, when it returns that error. ln is closed either way.
func serveListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	// The timeouts keep a stuck host-side client from holding a goroutine
	// and a socket forever; the answers are small.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-done
	return nil
}
