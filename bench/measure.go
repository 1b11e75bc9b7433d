//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sample is what one run of a process (or a pipeline of them) cost.
type sample struct {
	wall   time.Duration
	cpu    time.Duration // user + system, the process and its waited-for children
	maxRSS int64         // bytes: the largest resident set of any one process
}

// add accumulates a pipeline step: times add up, the peak is the largest.
func (s *sample) add(t sample) {
	s.wall += t.wall
	s.cpu += t.cpu
	s.maxRSS = max(s.maxRSS, t.maxRSS)
}

// runProc runs name with args, stdout to stdout (nil: discarded), and
// returns its cost and its standard error. A non-zero exit is an error
// that carries the end of standard error.
//
// The process is started by a small helper (this program, "rusage" mode)
// that reports what wait4 says of it. Started from the harness itself, its
// ru_maxrss would be at least the harness's own peak: Go starts children
// with vfork (CLONE_VM), and at execve Linux folds the high-water mark of
// the memory the child leaves, the parent's, into the child's maxrss.
// The helper is small, and falls back to sampling below its own size.
func runProc(ctx context.Context, stdout io.Writer, name string, args ...string) (sample, []byte, error) {
	return runProcEnv(ctx, nil, stdout, name, args...)
}

// runProcEnv is runProc with env added to the harness's environment.
func runProcEnv(ctx context.Context, env []string, stdout io.Writer, name string, args ...string) (sample, []byte, error) {
	self, err := os.Executable()
	if err != nil {
		return sample{}, nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return sample{}, nil, err
	}
	defer pr.Close()
	cmd := exec.CommandContext(ctx, self, append([]string{"rusage", name}, args...)...)
	cmd.Env = append(append(cmd.Environ(), "LC_ALL=C"), env...)
	if stdout == nil {
		stdout = io.Discard
	}
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.ExtraFiles = []*os.File{pw}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return sample{}, nil, err
	}
	report, rerr := io.ReadAll(pr)
	err = cmd.Wait()
	if err != nil {
		return sample{}, stderr.Bytes(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(stderr.Bytes(), 4<<10))
	}
	var wall, cpu, rssKiB int64
	if _, err := fmt.Sscan(string(report), &wall, &cpu, &rssKiB); err != nil || rerr != nil {
		return sample{}, nil, fmt.Errorf("%s: the rusage helper reported %q: %v", name, report, errors.Join(err, rerr))
	}
	return sample{wall: time.Duration(wall), cpu: time.Duration(cpu), maxRSS: rssKiB << 10}, stderr.Bytes(), nil
}

// rusageMain is the helper runProc starts: it runs the command with its
// own standard files, killed if the helper dies, and writes to fd 3 the
// command's wall time and CPU time in nanoseconds and its peak RSS in
// KiB. It exits with the command's status.
//
// The peak is wait4's ru_maxrss, which is exact when it is above the
// helper's own high-water mark at the fork (see runProc). When it is not,
// the command stayed below the helper's few MiB, and the peak is instead
// the largest VmHWM read from /proc/PID/status every 2 ms while it ran.
func rusageMain(args []string) error {
	if len(args) < 1 {
		return errors.New("usage: bench rusage COMMAND [ARG...] (reports on fd 3)")
	}
	report := os.NewFile(3, "rusage report")
	if procs := os.Getenv("BENCH_CGROUP_PROCS"); procs != "" {
		// Into the cgroup the harness made (makeCgroup), before the
		// command starts, so that the command is in it from its first
		// page; the helper's own few MiB are charged there too.
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("joining the cgroup: %w", err)
		}
		os.Unsetenv("BENCH_CGROUP_PROCS")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	floor := vmHWM("self")
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	polled := make(chan int64, 1)
	go func() {
		var hwm int64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		status := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status"
		for {
			hwm = max(hwm, vmHWM(status))
			select {
			case <-done:
				polled <- hwm
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(t0)
	close(done)
	hwm := <-polled
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return err
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return errors.New("no rusage")
	}
	peak := ru.Maxrss
	if peak <= floor {
		peak = hwm
	}
	fmt.Fprintf(report, "%d %d %d\n", wall.Nanoseconds(), ru.Utime.Nano()+ru.Stime.Nano(), peak)
	report.Close()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		if code < 0 {
			code = 128 + 9
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
		os.Exit(code)
	}
	return nil
}

// vmHWM returns the VmHWM line of a /proc status file in KiB ("self" for
// this process's own), or 0.
func vmHWM(status string) int64 {
	if status == "self" {
		status = "/proc/self/status"
	}
	b, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), "VmHWM:")
	if !ok {
		return 0
	}
	line, _, _ := strings.Cut(rest, "\n")
	n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "kB")), 10, 64)
	return n
}

func tail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return "[...]" + string(b[len(b)-n:])
}

// series is one pipeline's samples over the rounds.
type series []sample

func (s series) wall() time.Duration {
	return medianOf(s, func(x sample) time.Duration { return x.wall })
}
func (s series) cpu() time.Duration {
	return medianOf(s, func(x sample) time.Duration { return x.cpu })
}

// minMax returns the shortest and longest wall times.
func (s series) minMax() (time.Duration, time.Duration) {
	var lo, hi time.Duration
	for i, x := range s {
		if i == 0 || x.wall < lo {
			lo = x.wall
		}
		hi = max(hi, x.wall)
	}
	return lo, hi
}

// peakRSS is the largest peak over the rounds.
func (s series) peakRSS() int64 {
	var m int64
	for _, x := range s {
		m = max(m, x.maxRSS)
	}
	return m
}

func medianOf(s series, f func(sample) time.Duration) time.Duration {
	if len(s) == 0 {
		return 0
	}
	v := make([]time.Duration, len(s))
	for i, x := range s {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func medianInt(v []int64) int64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// runner is one row of a phase and how to measure a sample of it.
type runner struct {
	row *imageRow
	run func(context.Context) (sample, error)
}

// addRow appends a row to rows and, unless skip says why it cannot run,
// its runner to runs.
func addRow(rows *[]*imageRow, runs *[]runner, name, command, skip string, run func(context.Context) (sample, error)) {
	r := &imageRow{name: name, command: command, skip: skip}
	*rows = append(*rows, r)
	if skip == "" {
		*runs = append(*runs, runner{r, run})
	}
}

// takeTurns measures every runner once a round, in turn, each round
// starting with the next one, and logs each sample under phase.
func takeTurns(ctx context.Context, rounds int, phase string, runs []runner) error {
	for round := 0; round < rounds; round++ {
		for i := range runs {
			r := runs[(i+round)%len(runs)]
			s, err := r.run(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", r.row.name, err)
			}
			r.row.samples = append(r.row.samples, s)
			logf("%s: %-60s %7.2f s  %6.1f MiB", phase, r.row.name, s.wall.Seconds(), float64(s.maxRSS)/(1<<20))
		}
	}
	return nil
}
