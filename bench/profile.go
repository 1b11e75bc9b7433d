//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/tarflat"
)

// profileTarget is a tar to profile the image pipeline on.
type profileTarget struct {
	label, tar string
}

// profile is the CPU profile of the image pipeline on one tar.
type profile struct {
	label      string
	iterations int
	perIter    time.Duration
	flat, cum  string // go tool pprof -top, by flat time and (ext4pack's own functions) by cumulative time
	err        string
}

// runProfiles profiles each target in a process of its own (the harness's
// heap would otherwise weigh on the garbage collector) and has go tool
// pprof list the hot spots.
func runProfiles(ctx context.Context, work string, targets []profileTarget) ([]profile, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	goBin, err := lookTool("go")
	if err != nil {
		return nil, err
	}
	var out []profile
	for i, t := range targets {
		p := profile{label: t.label}
		prof := filepath.Join(work, fmt.Sprintf("cpu-%d.pprof", i))
		var stdout strings.Builder
		if _, _, err := runProc(ctx, &stdout, self, "profile-image", "-cpuprofile", prof, "-min", "5s", "-out", filepath.Join(work, "profile.ext4"), t.tar); err != nil {
			return nil, err
		}
		if _, err := fmt.Sscanf(stdout.String(), "%d %d", &p.iterations, &p.perIter); err != nil {
			return nil, fmt.Errorf("profile-image printed %q: %w", stdout.String(), err)
		}
		profs, err := filepath.Glob(prof + ".*")
		if err != nil || len(profs) == 0 {
			return nil, fmt.Errorf("profile-image left no %s.*", prof)
		}
		for _, mode := range []struct {
			dst  *string
			args []string
		}{
			{&p.flat, append([]string{"tool", "pprof", "-top", "-nodecount=25"}, profs...)},
			{&p.cum, append([]string{"tool", "pprof", "-top", "-cum", "-nodecount=30", "-show=ext4pack/"}, profs...)},
		} {
			var text strings.Builder
			if _, _, err := runProc(ctx, &text, goBin, mode.args...); err != nil {
				p.err = err.Error()
				break
			}
			*mode.dst = trimPprofHeader(text.String())
		}
		logf("profiled %s: %d iterations, %.3f s each", t.label, p.iterations, p.perIter.Seconds())
		out = append(out, p)
	}
	return out, nil
}

// trimPprofHeader drops the lines before "Showing nodes" but Duration's.
func trimPprofHeader(s string) string {
	var keep []string
	on := false
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "Duration:"):
			keep = append(keep, line)
		case strings.HasPrefix(line, "Showing nodes"):
			on = true
			fallthrough
		case on:
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// profileImageMain is the profiled process: the image pipeline exactly as
// `ext4pack image` runs it (cmd/ext4pack/image.go's writeImage: tarflat's
// Reader over the file, ext4w's Writer on an *os.File in the output's
// directory, tarflat.Copy, Close), repeated until -min has passed, under
// a CPU profile (FILE.0, FILE.1, ...: one per iteration). It prints the
// iteration count and nanoseconds per iteration.
func profileImageMain(args []string) error {
	fs := flag.NewFlagSet("profile-image", flag.ContinueOnError)
	cpuprofile := fs.String("cpuprofile", "", "write the CPU profiles to this name plus .N")
	minDur := fs.Duration("min", 5*time.Second, "repeat until this much time has passed (at least twice)")
	out := fs.String("out", "", "the image to write (removed after each iteration)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *cpuprofile == "" || *out == "" {
		return errors.New("usage: bench profile-image -cpuprofile FILE -out IMAGE [-min D] TAR")
	}
	// One profile per iteration, merged by pprof, so that removing the
	// previous image (freeing its tmpfs pages) is not in the profile.
	var busy time.Duration
	n := 0
	for n < 2 || busy < *minDur {
		pf, err := os.Create(fmt.Sprintf("%s.%d", *cpuprofile, n))
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		t0 := time.Now()
		img, err := imageOnce(fs.Arg(0), *out)
		busy += time.Since(t0)
		pprof.StopCPUProfile()
		os.Remove(img)
		if err := errors.Join(err, pf.Close()); err != nil {
			return err
		}
		n++
	}
	fmt.Printf("%d %d\n", n, busy.Nanoseconds()/int64(n))
	return nil
}

// imageOnce writes an image of tarPath beside out and returns its name.
func imageOnce(tarPath, out string) (string, error) {
	in, err := os.Open(tarPath)
	if err != nil {
		return "", err
	}
	defer in.Close()
	f, err := os.CreateTemp(filepath.Dir(out), ".profile-*.ext4")
	if err != nil {
		return "", err
	}
	defer f.Close()
	warn := func(m string) { fmt.Fprintf(os.Stderr, "ext4pack: warning: %s\n", m) }
	r := tarflat.NewReader(in, tarflat.WithWarn(warn))
	defer r.Close()
	w, err := ext4w.NewWriter(f, ext4w.WithSalt([]byte("ext4pack bench")), ext4w.WithWarn(warn))
	if err != nil {
		return f.Name(), err
	}
	if _, err := tarflat.Copy(w, r); err != nil {
		return f.Name(), err
	}
	if err := w.Close(); err != nil {
		return f.Name(), err
	}
	return f.Name(), f.Close()
}
