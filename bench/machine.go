//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machine describes where the figures were measured.
type machine struct {
	nproc                         int
	cpu, memory, kernel, goVer    string
	e2fsprogs, zstd, ext4packVer  string
	e2fsMajor, e2fsMinor, e2fsFix int
}

func describeMachine(ctx context.Context, bin string) machine {
	m := machine{nproc: runtime.NumCPU(), cpu: "?", memory: "?", kernel: "?", goVer: runtime.Version(), e2fsprogs: "not installed", zstd: "not installed"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb := meminfo("MemTotal"); kb > 0 {
		m.memory = strconv.FormatFloat(float64(kb)/(1<<20), 'f', 1, 64) + " GiB"
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.goVer = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	// mke2fs -V prints "mke2fs 1.47.0 (5-Feb-2023)" on stderr.
	if p, err := lookTool("mke2fs"); err == nil {
		out, _ := exec.CommandContext(ctx, p, "-V").CombinedOutput()
		if v := regexp.MustCompile(`mke2fs (\d+)\.(\d+)(?:\.(\d+))?`).FindSubmatch(out); v != nil {
			m.e2fsMajor, _ = strconv.Atoi(string(v[1]))
			m.e2fsMinor, _ = strconv.Atoi(string(v[2]))
			m.e2fsFix, _ = strconv.Atoi(string(v[3]))
			m.e2fsprogs = string(bytes.TrimPrefix(v[0], []byte("mke2fs ")))
		}
	}
	if out, err := exec.CommandContext(ctx, "zstd", "-V").CombinedOutput(); err == nil {
		if v := regexp.MustCompile(`v(\d+\.\d+\.\d+)`).FindSubmatch(out); v != nil {
			m.zstd = string(v[1])
		}
	}
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
		// The first two lines: the version and the commit.
		lines := strings.SplitN(strings.TrimSpace(string(out)), "\n", 3)
		m.ext4packVer = strings.Join(lines[:min(2, len(lines))], ", ")
	}
	return m
}

// e2fsAtLeast says whether the installed e2fsprogs is a.b.c or newer.
func (m machine) e2fsAtLeast(a, b, c int) bool {
	v := [3]int{m.e2fsMajor, m.e2fsMinor, m.e2fsFix}
	w := [3]int{a, b, c}
	for i := range v {
		if v[i] != w[i] {
			return v[i] > w[i]
		}
	}
	return true
}

// meminfo returns a /proc/meminfo field in KiB, or 0.
func meminfo(field string) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == field {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// loadMeter measures how busy the machine was with work other than the
// harness's own: the CPU time /proc/stat says all CPUs spent, less what
// this process and its children spent.
type loadMeter struct {
	t0        time.Time
	busy0     float64 // seconds
	self0     float64
	loadStart string
}

// loadReport is what a loadMeter found.
type loadReport struct {
	seconds             float64 // wall time of the run
	available           float64 // CPU-seconds the machine had
	ours, others        float64 // CPU-seconds used by the harness and by everything else
	loadStart, loadStop string  // /proc/loadavg's first three fields
}

func startLoadMeter() *loadMeter {
	return &loadMeter{t0: time.Now(), busy0: cpuBusy(), self0: selfAndChildrenCPU(), loadStart: loadavg()}
}

func (l *loadMeter) stop() loadReport {
	secs := time.Since(l.t0).Seconds()
	busy := cpuBusy() - l.busy0
	ours := selfAndChildrenCPU() - l.self0
	return loadReport{
		seconds:   secs,
		available: secs * float64(runtime.NumCPU()),
		ours:      ours,
		others:    max(0, busy-ours),
		loadStart: l.loadStart,
		loadStop:  loadavg(),
	}
}

// cpuBusy is the seconds all CPUs spent not idle, from /proc/stat's cpu
// line (user nice system idle iowait irq softirq steal ...).
func cpuBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy float64
	for i, s := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest times are in user already
			continue
		}
		n, _ := strconv.ParseFloat(s, 64)
		busy += n
	}
	return busy / 100 // USER_HZ is 100 on Linux
}

func selfAndChildrenCPU() float64 {
	var total float64
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
		}
	}
	return total
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// lookTool finds name on PATH or in the sbin directories a non-root PATH
// lacks.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := d + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}
