package bundle

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestMemoryBudgetRSS checks the budget against the kernel's count: a
// process that writes a bundle with a budget of two workers peaks within
// it, on an image half of random bytes (whose frames compress to their
// full size, so that the second worker runs out of room to hold its
// output and waits for its turn) and half of text. Windows and frames of
// 16 MiB keep it quick; the budget scales with them (workerMemory).
func TestMemoryBudgetRSS(t *testing.T) {
	const frame = 16 << 20
	worker := workerMemory(zstd.SpeedBestCompression, frame, frame)
	budget := memoryReserve + 2*worker + frame/heldShare + 8<<20
	if img := os.Getenv("EXT4PACK_BUNDLE_RSS_IMAGE"); img != "" {
		// The child: write the bundle, and nothing else.
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		opts := []Option{WithLevel(zstd.SpeedBestCompression), WithWindowSize(frame), WithFrameSize(frame), WithMemoryBudget(budget), WithConcurrency(8)}
		p, err := PlanMemory(opts...)
		if err != nil {
			t.Fatal(err)
		}
		if p.Workers != 2 {
			t.Fatalf("plan %+v, want 2 workers", p)
		}
		if _, err := Write(context.Background(), io.Discard, f, testManifest, opts...); err != nil {
			t.Fatal(err)
		}
		// The child's own peak since exec. The parent's view of it,
		// wait4's ru_maxrss, would fold in the parent's own peak:
		// Linux records the old address space's peak at exec, and Go
		// starts children with vfork, in the parent's.
		status, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(status)) {
			if strings.HasPrefix(line, "VmHWM:") {
				fmt.Printf("peak %s", strings.Join(strings.Fields(line)[1:], " "))
			}
		}
		return
	}

	img := filepath.Join(t.TempDir(), "image")
	random := make([]byte, 32<<20)
	rand.Read(random)
	data := append(random, randBytes(31, 32<<20)...)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryBudgetRSS$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EXT4PACK_BUNDLE_RSS_IMAGE="+img)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var peak int64
	i := bytes.Index(out, []byte("peak "))
	if i < 0 {
		t.Fatalf("no peak in the child's output:\n%s", out)
	}
	if _, err := fmt.Sscanf(string(out[i:]), "peak %d kB", &peak); err != nil {
		t.Fatalf("no peak in the child's output: %v\n%s", err, out)
	}
	peak <<= 10
	t.Logf("peak RSS %.1f MiB, budget %.1f MiB (a worker %.1f MiB)", float64(peak)/mib, float64(budget)/mib, float64(worker)/mib)
	if peak > budget {
		t.Errorf("peak RSS %d MiB over the budget of %d MiB", peak>>20, budget>>20)
	}
}
