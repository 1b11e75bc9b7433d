package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestImageStdinMemory runs the real binary on a 256 MiB tar through a
// pipe and checks its peak memory: the tar is streamed, never held.
//
// The peak is the kernel's VmHWM of the process, sampled while it runs:
// wait4's ru_maxrss would not do, since Linux folds into it the RSS of
// the address space the child was vforked from, the test's own.
func TestImageStdinMemory(t *testing.T) {
	bin := buildBinary(t)
	outDir := t.TempDir()
	sizes := map[string]int64{"data": 32 << 20, "zeros": 224 << 20}
	src := streamTar([]string{"data", "zeros"}, func(n string) int64 { return sizes[n] }, func(n string) bool { return n == "zeros" })
	cmd := exec.Command(bin, "image", "--rootfs-tar", "-", "--out", filepath.Join(outDir, "img"))
	cmd.Stdin = src
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak, samples int64
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			running = false
		case <-tick.C:
			if hwm, ok := vmHWM(status); ok {
				peak, samples = max(peak, hwm), samples+1
			}
		}
	}
	if samples == 0 {
		t.Fatal("the process ended before its memory could be read once")
	}
	t.Logf("peak RSS %d MiB (%d samples) for a 256 MiB tar on standard input", peak>>20, samples)
	if peak > 96<<20 {
		t.Errorf("peak RSS %d MiB: the tar seems to be held in memory", peak>>20)
	}
}
