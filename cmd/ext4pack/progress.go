package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/ext4pack/ext4pack"
)

// progress prints one self-overwriting status line on stderr, only when
// stderr is a terminal: scripts and logs get no carriage returns.
type progress struct {
	mu    sync.Mutex
	out   io.Writer
	on    bool
	last  time.Time
	stage string // what the line last showed: its first argument
	shown bool
	// The job the time left is estimated for: its first report's time
	// and bytes, and its total (a new total starts a new job).
	jobStart time.Time
	jobFrom  int64
	jobTotal int64
}

func newProgress(c *cli.Context) *progress {
	p := &progress{out: c.App.ErrWriter}
	if f, ok := c.App.ErrWriter.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.on = true
	}
	return p
}

// show prints the status at most ten times a second, but at once when
// the stage changes, so that a short stage is seen too.
func (p *progress) show(format string, args ...any) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	stage := format
	if len(args) > 0 {
		stage = fmt.Sprint(args[0])
	}
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond || stage != p.stage {
		p.last, p.stage = now, stage
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

// report shows a library progress report: with a known total, the
// percentage and the time left at the rate so far; else the bytes done.
func (p *progress) report(r ext4pack.Progress) {
	if p == nil || !p.on {
		return
	}
	if r.Total <= 0 {
		p.show("%s: %s", r.Stage, humanBytes(uint64(r.Done)))
		return
	}
	p.mu.Lock()
	now := time.Now()
	if r.Total != p.jobTotal || r.Done < p.jobFrom {
		p.jobStart, p.jobFrom, p.jobTotal = now, r.Done, r.Total
	}
	left := ""
	if el, done := now.Sub(p.jobStart), r.Done-p.jobFrom; el > time.Second && done > 0 {
		rest := time.Duration(float64(el) * float64(r.Total-r.Done) / float64(done))
		left = ", " + rest.Round(time.Second).String() + " left"
	}
	p.mu.Unlock()
	p.show("%s: %d%% of %s%s", r.Stage, 100*r.Done/r.Total, humanBytes(uint64(r.Total)), left)
}
