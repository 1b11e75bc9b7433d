package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// The library writes the outputs: to a temporary file beside the target,
// renamed into place on success, and removed on failure or once the
// context is cancelled, before it returns (SPEC "Output files"). What is
// left to the command is a signal: it cancels the context, waits for the
// library to return, removes an output already renamed into place (a
// signal while the command prints or exits leaves no output either), says
// so and exits 130 or 143.
type session struct {
	ctx    context.Context
	cancel context.CancelFunc
	// mu is held while the library works and its output is recorded.
	// The signal handler takes it, so that it waits for the library to
	// return, and never gives it back: once it has, no output is made.
	mu      sync.Mutex
	outputs []string // outputs the library renamed into place
}

func newSession() *session {
	s := &session{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// do runs fn, a call of the library that writes the output it returns
// ("" for none). After a signal it never returns: the handler ends the
// process, with the library's temporary files gone and the output too.
func (s *session) do(fn func() (output string, err error)) error {
	s.mu.Lock()
	out, err := fn()
	if err == nil && out != "" {
		s.outputs = append(s.outputs, out)
	}
	interrupted := s.ctx.Err() != nil
	s.mu.Unlock()
	if interrupted {
		select {}
	}
	return err
}

// interrupt is the signal handler's work: it stops the library, waits
// for it, removes what it wrote and exits.
func (s *session) interrupt(sig os.Signal, stderr io.Writer) {
	s.cancel()
	s.mu.Lock()
	for _, p := range s.outputs {
		os.Remove(p)
	}
	code := 130
	if sig == syscall.SIGTERM {
		code = 143
	}
	fmt.Fprintf(stderr, "ext4pack: interrupted (%v); no output written\n", sig)
	os.Exit(code)
}

// finish is the last thing run does: it waits for a signal handler that
// has begun, which ends the process, and keeps one that has not from
// removing the output of a run that finished.
func (s *session) finish() {
	s.mu.Lock()
}
