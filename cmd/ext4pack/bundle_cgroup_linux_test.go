package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMakeBundleCgroup512: inside a cgroup limited to 512 MiB, make-bundle
// of 1 GiB of text at the default level completes (no OOM kill), its
// peak RSS under the limit: the plan finds the limit (below a quarter of
// this machine's memory) and runs as many workers as it holds, and
// --verbose says so. It needs root to make the cgroup.
func TestMakeBundleCgroup512(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("making a cgroup needs root (CI runs as root)")
		}
		t.Skip("making a cgroup needs root")
	}
	const limit = 512 << 20
	cg, peakFile, err := makeMemoryCgroup(t, limit)
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	// On the disk, not a tmpfs: a tmpfs's pages would be charged to the
	// cgroup.
	dir := t.TempDir()
	in := filepath.Join(dir, "text.tar")
	writeTextTar(t, in, 1<<30)
	out := filepath.Join(dir, "text.tar.zst")

	// The test binary joins the cgroup, then becomes make-bundle (see
	// TestCgroupHelper), so that make-bundle is in it from its start.
	cmd := exec.Command(os.Args[0], "-test.run=^TestCgroupHelper$", "--",
		bin, "make-bundle", "--rootfs-tar", in, "--name", "text", "--no-agents", "--verbose", "--out", out)
	// GOMAXPROCS 16: were the limit missed, the default budget (a
	// quarter of the machine's memory) would run a worker for each of
	// the 9 frames, 1.5 GiB, and the kernel would kill it.
	cmd.Env = append(os.Environ(), "EXT4PACK_TEST_CGROUP_PROCS="+filepath.Join(cg, "cgroup.procs"), "GOMAXPROCS=16")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The process's own peak, sampled: the cgroup's count holds the page
	// cache of the tar, the image and the bundle too, which the kernel
	// reclaims at the limit rather than killing anyone.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var rss int64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("make-bundle in a 512 MiB cgroup: %v (an OOM kill is SIGKILL)\n%s", err, stderr.String())
			}
			running = false
		case <-tick.C:
			if hwm, ok := vmHWM(status); ok {
				rss = max(rss, hwm)
			}
		}
	}
	peak, err := os.ReadFile(peakFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak RSS %d MiB; the cgroup's peak, page cache included, %s bytes; %s", rss>>20, strings.TrimSpace(string(peak)), strings.TrimSpace(stderr.String()))
	if rss == 0 || rss > limit {
		t.Errorf("peak RSS %d MiB, not under the cgroup's limit", rss>>20)
	}
	if !strings.Contains(stderr.String(), "a memory budget of 512 MiB (the cgroup") || !strings.Contains(stdout.String(), "path: "+out) {
		t.Errorf("--verbose did not name the cgroup's limit as the budget, or no bundle:\nstdout %s\nstderr %s", stdout.String(), stderr.String())
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}

// TestCgroupHelper is TestMakeBundleCgroup512's child: it moves itself
// into the cgroup and execs the command.
func TestCgroupHelper(t *testing.T) {
	procs := os.Getenv("EXT4PACK_TEST_CGROUP_PROCS")
	if procs == "" {
		t.Skip("a helper process of TestMakeBundleCgroup512")
	}
	if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	args := flag.Args()
	env := []string{}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "EXT4PACK_TEST_") {
			env = append(env, e)
		}
	}
	t.Fatal(syscall.Exec(args[0], args, env))
}

// makeMemoryCgroup makes a cgroup limited to limit bytes below this
// process's own memory cgroup (cgroup v1's memory controller, as on this
// project's machines) or below the root of a cgroup v2 hierarchy that
// delegates the memory controller, and returns its directory and the
// file of its peak usage. It is removed when the test ends.
func makeMemoryCgroup(t *testing.T, limit int64) (dir, peak string, err error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", "", err
	}
	var v1 string
	for line := range strings.Lines(string(self)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) == 3 && hasWord(parts[1], "memory") {
			v1 = parts[2]
		}
	}
	name := fmt.Sprintf("ext4pack-test-%d", os.Getpid())
	var limitFile string
	switch {
	case v1 != "" && fileExists("/sys/fs/cgroup/memory/memory.limit_in_bytes"):
		dir, limitFile, peak = filepath.Join("/sys/fs/cgroup/memory", v1, name), "memory.limit_in_bytes", "memory.max_usage_in_bytes"
	case fileExists("/sys/fs/cgroup/cgroup.subtree_control"):
		ctl, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control")
		if err != nil || !hasWord(strings.ReplaceAll(strings.TrimSpace(string(ctl)), " ", ","), "memory") {
			return "", "", errors.New("the cgroup v2 root does not delegate the memory controller")
		}
		dir, limitFile, peak = filepath.Join("/sys/fs/cgroup", name), "memory.max", "memory.peak"
	default:
		return "", "", errors.New("no cgroup memory controller at /sys/fs/cgroup")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", "", err
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("removing the cgroup: %v", err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		return "", "", err
	}
	return dir, filepath.Join(dir, peak), nil
}

func hasWord(list, w string) bool {
	for s := range strings.SplitSeq(list, ",") {
		if s == w {
			return true
		}
	}
	return false
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeTextTar writes a tar of n bytes of word salad in files of 64 MiB,
// streamed to the file.
func writeTextTar(t *testing.T, name string, n int64) {
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	words := strings.Fields("the quick brown fox jumps over lazy dog ext4 inode block extent journal tar layer image bundle guest agent vsock kernel")
	rng := rand.New(rand.NewPCG(5, 6))
	const file = 64 << 20
	line := make([]byte, 0, 256)
	for i := int64(0); i < n; i += file {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("text%03d", i/file), Typeflag: tar.TypeReg, Mode: 0o644, Size: file}); err != nil {
			t.Fatal(err)
		}
		for left := file; left > 0; {
			line = line[:0]
			for len(line) < 200 {
				line = append(line, words[rng.IntN(len(words))]...)
				line = append(line, ' ')
			}
			line = append(line, '\n')
			k := min(left, len(line))
			tw.Write(line[:k])
			left -= k
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}
