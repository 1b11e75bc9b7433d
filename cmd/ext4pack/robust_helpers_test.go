package main

// robust_helpers_test.go: helpers for the issue 9 robustness tests
// (robust_*_test.go): running the real binary and reading how it ended,
// building the inputs they share, and crafting raw tar headers that
// archive/tar will not write.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// exitOf turns how a process ended into a shell's exit status: its code,
// or 128 + the signal that killed it (before ext4pack's own handler was
// in place, a signal kills the process the default way).
func exitOf(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

// oneLine checks SPEC's error form: exit 1 and one line on stderr that
// says ext4pack and holds each of want.
func oneLine(t *testing.T, code int, stderr string, want ...string) {
	t.Helper()
	msg := strings.TrimRight(stderr, "\n")
	if code != 1 || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "ext4pack: ") {
		t.Errorf("exit %d, stderr %q; want exit 1 and one line", code, stderr)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("the message %q does not say %q", msg, w)
		}
	}
}

// withTimeout runs f and fails t if it takes longer than d: a hang is a
// failure, not a stuck test binary.
func withTimeout(t *testing.T, d time.Duration, what string, f func()) time.Duration {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not finish in %v", what, d)
	}
	return time.Since(start)
}

// dataTar writes a tar of files of incompressible data (so that the
// bundle's compression takes a while) and many small files (so that
// Close has metadata to write), and returns its path.
func dataTar(t *testing.T, mib, small int) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	rng := rand.New(rand.NewPCG(1, 2))
	chunk := make([]byte, 1<<20)
	for i := 0; i < mib; i++ {
		for j := 0; j < len(chunk); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				chunk[j+k] = byte(v >> (8 * k))
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/f%03d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(chunk)), ModTime: oracle.DefaultMtime}); err != nil {
			t.Fatal(err)
		}
		tw.Write(chunk)
	}
	for i := 0; i < small; i++ {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("small/d%02d/s%05d", i%50, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: 5, ModTime: oracle.DefaultMtime}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("small"))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "data.tar", b.Bytes())
}

// hugeSparseTar is a PAX 1.0 sparse member (GNU tar's
// --sparse-version=1.0) named big, of realsize bytes, holding 4 KiB of
// data at its end and holes before: a few KiB of tar that claims any
// size.
func hugeSparseTar(realsize int64) []byte {
	m := tartest.Pad(fmt.Sprintf("1\n%d\n4096\n", realsize-4096))
	return slices.Concat(
		tartest.RawPAX(tar.TypeXHeader, "GNU.sparse.major", "1", "GNU.sparse.minor", "0",
			"GNU.sparse.name", "big", "GNU.sparse.realsize", strconv.FormatInt(realsize, 10)),
		tartest.Raw{Name: "GNUSparseFile.0/big", Typeflag: tar.TypeReg, Size: int64(len(m) + 4096), Mtime: oracle.DefaultMtime.Unix()}.Block(),
		m, bytes.Repeat([]byte("s"), 4096),
		tartest.End(),
	)
}

// paxTar is one regular file whose PAX header carries recs, with data.
func paxTar(name string, recs map[string]string, data []byte) []byte {
	return paxTarType(name, tar.TypeReg, recs, data)
}

// paxTarType is one member of type typeflag whose PAX header carries
// recs, with data: by hand, since archive/tar's Writer drops the records
// it writes itself (path, size, ...).
func paxTarType(name string, typeflag byte, recs map[string]string, data []byte) []byte {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(recs)) {
		kv = append(kv, k, recs[k])
	}
	return slices.Concat(
		tartest.RawPAX(tar.TypeXHeader, kv...),
		tartest.Raw{Name: name, Typeflag: typeflag, Size: int64(len(data)), Mtime: oracle.DefaultMtime.Unix()}.Block(),
		tartest.Pad(data),
		tartest.End(),
	)
}

// peakRSS follows a running process's VmHWM until it exits.
func peakRSS(cmd *exec.Cmd) (peak int64, err error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return peak, err
		case <-tick.C:
			if hwm, ok := vmHWM(status); ok {
				peak = max(peak, hwm)
			}
		}
	}
}

// copyTo feeds r to w and closes w, reporting the error on ch.
func copyTo(w io.WriteCloser, r io.Reader) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, r)
		w.Close()
		ch <- err
	}()
	return ch
}

// vmHWM reads the peak resident set size, in bytes, from a
// /proc/PID/status file; false where there is none (not Linux).
func vmHWM(status string) (int64, bool) {
	f, err := os.Open(status)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
