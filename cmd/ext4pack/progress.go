package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// progress prints one self-overwriting status line on stderr, only when
// stderr is a terminal: scripts and logs get no carriage returns.
type progress struct {
	mu    sync.Mutex
	out   io.Writer
	on    bool
	last  time.Time
	shown bool
}

func newProgress(c *cli.Context) *progress {
	p := &progress{out: c.App.ErrWriter}
	if f, ok := c.App.ErrWriter.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.on = true
	}
	return p
}

// show prints the status at most ten times a second.
func (p *progress) show(format string, args ...any) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.shown = true
		fmt.Fprintf(p.out, "\r\033[K"+format, args...)
	}
}

// done clears the status line.
func (p *progress) done() {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.out, "\r\033[K")
		p.shown = false
	}
}

// countReader reports the bytes read through it.
type countReader struct {
	r    io.Reader
	n    int64
	p    *progress
	what string
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.p.show("%s: %s", c.what, humanBytes(uint64(c.n)))
	return n, err
}

// reader shows how much of r was read, when stderr is a terminal.
func (p *progress) reader(r io.Reader, what string) io.Reader {
	if !p.on {
		return r
	}
	return &countReader{r: r, p: p, what: what}
}
