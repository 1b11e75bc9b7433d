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
	// The jobs the time left is estimated for: the build (or the
	// bundle's hashing, compressing), and an image's download.
	build, fetch eta
}

// eta estimates a job's time left from its rate so far: from its first
// report's time and bytes. A new total starts a new job.
type eta struct {
	start       time.Time
	from, total int64
}

// left is ", 12s left", or "" until a second has passed.
func (e *eta) left(now time.Time, done, total int64) string {
	if total != e.total || done < e.from {
		*e = eta{start: now, from: done, total: total}
	}
	el, d := now.Sub(e.start), done-e.from
	if el <= time.Second || d <= 0 {
		return ""
	}
	rest := time.Duration(float64(el) * float64(total-done) / float64(d))
	return ", " + rest.Round(time.Second).String() + " left"
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
// An image being downloaded shows the download too, which runs ahead.
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
	line := fmt.Sprintf("%d%% of %s%s", 100*r.Done/r.Total, humanBytes(uint64(r.Total)), p.build.left(now, r.Done, r.Total))
	if r.FetchTotal > 0 && r.Fetched < r.FetchTotal {
		line = fmt.Sprintf("built %s; downloaded %d%% of %s%s", line, 100*r.Fetched/r.FetchTotal, humanBytes(uint64(r.FetchTotal)), p.fetch.left(now, r.Fetched, r.FetchTotal))
	}
	p.mu.Unlock()
	p.show("%s: %s", r.Stage, line)
}
