package bundle

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

const mib = 1 << 20

// noLimits stands in for the machine's limits in plan tests.
func noLimits() ([]memLimit, error) { return nil, nil }

// fakeMemory stands in for the machine's physical memory: n bytes, or
// unknown when n is negative.
func fakeMemory(n int64) func() (int64, error) {
	return func() (int64, error) {
		if n < 0 {
			return 0, errors.New("no sysinfo")
		}
		return n, nil
	}
}

// withMemory is an option that sets the machine's memory the default
// budget is a quarter of.
func withMemory(n int64) Option {
	return func(o *options) error {
		o.physMem = fakeMemory(n)
		return nil
	}
}

// TestPlan checks how workers are fitted into the budget, and that the
// machine's limits lower it only when they are lower.
func TestPlan(t *testing.T) {
	best := workerMemory(zstd.SpeedBestCompression, DefaultWindowSize, DefaultFrameSize)
	if best < 162*mib || best > 166*mib {
		t.Fatalf("a worker at the defaults holds %d MiB; the measured figure is 163", best>>20)
	}
	limit := func(n int64, from string) func() ([]memLimit, error) {
		return func() ([]memLimit, error) { return []memLimit{{n, from}}, nil }
	}
	const floor = "the default's floor of 512 MiB (a quarter of the machine's 1024 MiB of memory is less)"
	for _, tc := range []struct {
		name        string
		opts        []Option
		phys        int64 // the machine's memory; 0: 1 GiB
		limits      func() ([]memLimit, error)
		workers     int
		from        string
		errContains string
	}{
		// SPEC: a quarter of the machine's memory, at least 512 MiB: on
		// a machine of 1 GiB two workers at the best level, however
		// many CPUs; on one of 64 GiB as many as the CPUs.
		{name: "defaults, 16 CPUs, 1 GiB", opts: []Option{WithConcurrency(16)}, workers: 2, from: floor},
		{name: "defaults, 1 CPU", opts: []Option{WithConcurrency(1)}, workers: 1, from: floor},
		{name: "defaults, 16 CPUs, 64 GiB", opts: []Option{WithConcurrency(16)}, phys: 64 << 30, workers: 16, from: "the default: a quarter of the machine's 65536 MiB of memory"},
		{name: "defaults, 128 CPUs, 64 GiB: the budget binds", opts: []Option{WithConcurrency(128)}, phys: 64 << 30, workers: 83},
		{name: "defaults, 16 CPUs, 4 GiB", opts: []Option{WithConcurrency(16)}, phys: 4 << 30, workers: 5},
		{name: "memory unknown", opts: []Option{WithConcurrency(16)}, phys: -1, workers: 2, from: "the default's floor of 512 MiB (the machine's memory is not known: no sysinfo)"},
		{name: "64 GiB, GOMEMLIMIT 512 MiB", opts: []Option{WithConcurrency(16)}, phys: 64 << 30, limits: limit(512*mib, "GOMEMLIMIT"), workers: 2, from: "GOMEMLIMIT"},
		{name: "64 GiB, a cgroup of 512 MiB", opts: []Option{WithConcurrency(16)}, phys: 64 << 30, limits: limit(512*mib, "cgroup x"), workers: 2, from: "cgroup x"},
		{name: "fastest, 16 CPUs", opts: []Option{WithConcurrency(16), WithLevel(zstd.SpeedFastest)}, workers: 2},
		{name: "a cgroup of 256 MiB", opts: []Option{WithConcurrency(16)}, limits: limit(256*mib, "cgroup x"), workers: 1, from: "cgroup x"},
		{name: "a higher cgroup limit", opts: []Option{WithConcurrency(16)}, limits: limit(8<<30, "cgroup x"), workers: 2, from: floor},
		{name: "a larger budget", opts: []Option{WithConcurrency(16), WithMemoryBudget(2 << 30)}, workers: 10, from: "bundle.WithMemoryBudget"},
		{name: "a larger budget, a lower GOMEMLIMIT", opts: []Option{WithConcurrency(16), WithMemoryBudget(2 << 30)}, limits: limit(1<<30, "GOMEMLIMIT"), workers: 5, from: "GOMEMLIMIT"},
		{name: "too small", opts: []Option{WithConcurrency(16)}, limits: limit(200*mib, "the cgroup v2 memory.max of /sys/fs/cgroup/ci"),
			errContains: "compressing at level best with a 128 MiB window needs 228 MiB (164 MiB for the encoder, 64 MiB for the rest), but the budget is 200 MiB, set by the cgroup v2 memory.max of /sys/fs/cgroup/ci"},
		{name: "small frames, small windows", opts: []Option{WithConcurrency(64), WithFrameSize(1 << 20)}, workers: 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := newOptions(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			o.limits = noLimits
			if tc.limits != nil {
				o.limits = tc.limits
			}
			o.physMem = fakeMemory(cmp.Or(tc.phys, 1<<30))
			p, err := o.plan()
			if tc.errContains != "" {
				if !errors.Is(err, ErrMemoryBudget) || !strings.Contains(err.Error(), tc.errContains) {
					t.Fatalf("error %v, want ErrMemoryBudget saying %q", err, tc.errContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", p)
			if p.Workers != tc.workers || (tc.from != "" && p.BudgetFrom != tc.from) {
				t.Errorf("%d workers, budget from %q; want %d, %q", p.Workers, p.BudgetFrom, tc.workers, tc.from)
			}
			used := int64(p.Workers)*p.WorkerBytes + p.HeldBytes + memoryReserve
			if used > p.Budget {
				t.Errorf("the plan uses %d MiB of a %d MiB budget", used>>20, p.Budget>>20)
			}
			if p.Workers > 1 && p.HeldBytes < int64(p.Workers-1)*o.frameSize/heldShare {
				t.Errorf("%d workers with %d MiB for held output", p.Workers, p.HeldBytes>>20)
			}
		})
	}
}

// TestWorkerMemory holds workerMemory against what an encoder really
// allocates for one frame, at each level, for frames within the window (a
// history of the window) and larger than it (twice the window). Small
// windows keep it quick; the tables are the same size at any window.
func TestWorkerMemory(t *testing.T) {
	data := randBytes(21, 4*mib)
	for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression} {
		for _, c := range []struct {
			window int
			frame  int64
		}{{8 * mib, 8 * mib}, {4 * mib, 16 * mib}, {8 * mib, 5 * mib}} {
			window := encoderWindow(c.window, c.frame)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithWindowSize(window),
				zstd.WithLowerEncoderMem(lowMemEncoder(window, c.frame)), zstd.WithEncoderConcurrency(1))
			if err != nil {
				t.Fatal(err)
			}
			enc.ResetContentSize(io.Discard, c.frame)
			for left := c.frame; left > 0; left -= int64(len(data)) {
				if _, err := enc.ReadFrom(bytes.NewReader(data[:min(left, int64(len(data)))])); err != nil {
					t.Fatal(err)
				}
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(enc)
			got := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			est := workerMemory(level, c.window, c.frame)
			t.Logf("%s, window %d MiB, frame %d MiB: %.1f MiB held, %.1f MiB estimated", level, c.window>>20, c.frame>>20, float64(got)/mib, float64(est)/mib)
			if got > est || got < est-encoderSlack-zstdBlockSize {
				t.Errorf("%s, window %d MiB, frame %d MiB: the encoder holds %d bytes, the estimate is %d", level, c.window>>20, c.frame>>20, got, est)
			}
		}
	}
}

// TestLowMemSameBytes checks what lowMemEncoder relies on: for frames no
// larger than the window, the smaller history gives the same bytes.
func TestLowMemSameBytes(t *testing.T) {
	data := randBytes(22, 6*mib)
	for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression} {
		var outs [2][]byte
		for i, low := range []bool{false, true} {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithWindowSize(2*mib),
				zstd.WithLowerEncoderMem(low), zstd.WithEncoderConcurrency(1))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			for f := 0; f < 3; f++ {
				enc.ResetContentSize(&b, 2*mib)
				if _, err := enc.ReadFrom(bytes.NewReader(data[f*2*mib : (f+1)*2*mib])); err != nil {
					t.Fatal(err)
				}
				if err := enc.Close(); err != nil {
					t.Fatal(err)
				}
			}
			outs[i] = b.Bytes()
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%s: %d bytes with the full history, %d with the smaller one", level, len(outs[0]), len(outs[1]))
		}
	}
}

// TestBudgetSameBytes checks that the budget changes how frames are
// compressed at once, never the output: with room to hold output, with none
// (the second worker waits for its turn at every chunk), and with one
// worker.
func TestBudgetSameBytes(t *testing.T) {
	dir := t.TempDir()
	c := imageCases()[0]
	c.regions = append(c.regions, region{6 * mib, randBytes(23, 2*mib)})
	img, _ := makeImage(t, dir, c)
	frame := int64(MinFrameSize)
	worker := workerMemory(zstd.SpeedBestCompression, DefaultWindowSize, frame)
	write := func(opts ...Option) []byte {
		var b bytes.Buffer
		opts = append(opts, WithModTime(testTime))
		if _, err := Write(context.Background(), &b, img, testManifest, opts...); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	want := write(WithConcurrency(1), WithFrameSize(frame))
	for _, tc := range []struct {
		name    string
		budget  int64
		workers int
		held    int64
	}{
		{"no room to hold output", memoryReserve + 2*worker + frame/heldShare, 2, 0},
		{"room for one chunk", memoryReserve + 2*worker + heldChunk, 2, heldChunk},
		{"room for much", memoryReserve + 4*worker + 3*frame/heldShare + 64*mib, 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []Option{WithConcurrency(4), WithMemoryBudget(tc.budget), WithFrameSize(frame)}
			p, err := PlanMemory(opts...)
			if err != nil {
				t.Fatal(err)
			}
			if p.Workers != tc.workers || (tc.held > 0 && p.HeldBytes != tc.held) {
				t.Fatalf("plan %+v, want %d workers holding %d bytes", p, tc.workers, tc.held)
			}
			if got := write(opts...); !bytes.Equal(got, want) {
				t.Errorf("output differs from one worker's: %d vs %d bytes", len(got), len(want))
			}
		})
	}
}

// TestBudgetTooSmall: Write refuses a budget that cannot hold one worker
// before it reads the image, and says so.
func TestBudgetTooSmall(t *testing.T) {
	img, _ := makeImage(t, t.TempDir(), imageCases()[0])
	read := false
	_, err := Write(context.Background(), io.Discard, img, testManifest, WithMemoryBudget(100*mib),
		WithProgress(func(int64, int64) { read = true }))
	if !errors.Is(err, ErrMemoryBudget) || !strings.Contains(err.Error(), "the budget is 100 MiB, set by bundle.WithMemoryBudget") {
		t.Errorf("error %v, want ErrMemoryBudget naming the budget", err)
	}
	if read {
		t.Error("the image was read before the budget was checked")
	}
}

// TestGOMEMLIMIT checks that the Go runtime's memory limit lowers the
// budget when it is lower.
func TestGOMEMLIMIT(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(300 * mib))
	p, err := PlanMemory(WithConcurrency(16))
	if err != nil {
		t.Fatal(err)
	}
	if p.Budget > 300*mib || p.Workers != 1 {
		t.Errorf("plan %+v with GOMEMLIMIT at 300 MiB", p)
	}
	if p.Budget == 300*mib && !strings.Contains(p.BudgetFrom, "GOMEMLIMIT") {
		t.Errorf("budget from %q", p.BudgetFrom)
	}
}

// TestCgroupLimits reads fake /proc and /sys trees: cgroup v2 and v1
// hierarchies, limits on the process's cgroup and on its ancestors, a
// cgroup namespace, and the ways a file says there is no limit.
func TestCgroupLimits(t *testing.T) {
	const (
		v2mount     = "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
		v1mount     = "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
		cpuMount    = "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
		hybridMount = "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
		rootMount   = "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	)
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    []memLimit
		wantErr string
	}{
		{
			name: "no proc",
		},
		{
			name: "v2, limits on the cgroup and its grandparent",
			files: map[string]string{
				"proc/self/cgroup":                                   "0::/ci.slice/job-7.scope\n",
				"proc/self/mountinfo":                                rootMount + v2mount,
				"sys/fs/cgroup/ci.slice/job-7.scope/memory.max":      "536870912\n",
				"sys/fs/cgroup/ci.slice/memory.max":                  "max\n",
				"sys/fs/cgroup/memory.max":                           "268435456\n", // not there on a real root; harmless
				"sys/fs/cgroup/ci.slice/job-7.scope/memory.high":     "1000\n",      // not a limit that kills
				"sys/fs/cgroup/ci.slice/job-7.scope/memory.swap.max": "0\n",
			},
			want: []memLimit{
				{512 * mib, "the cgroup v2 memory.max of /sys/fs/cgroup/ci.slice/job-7.scope"},
				{256 * mib, "the cgroup v2 memory.max of /sys/fs/cgroup"},
			},
		},
		{
			name: "v2 in a cgroup namespace",
			files: map[string]string{
				"proc/self/cgroup":         "0::/\n",
				"proc/self/mountinfo":      rootMount + v2mount,
				"sys/fs/cgroup/memory.max": "268435456",
			},
			want: []memLimit{{256 * mib, "the cgroup v2 memory.max of /sys/fs/cgroup"}},
		},
		{
			name: "v2 mount rooted at a cgroup (a bind mount of it)",
			files: map[string]string{
				"proc/self/cgroup":             "0::/kubepods/pod1/ctr\n",
				"proc/self/mountinfo":          "30 22 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
				"sys/fs/cgroup/ctr/memory.max": "max",
				"sys/fs/cgroup/memory.max":     "1073741824",
			},
			want: []memLimit{{1 << 30, "the cgroup v2 memory.max of /sys/fs/cgroup"}},
		},
		{
			name: "v1 memory controller, as on this project's CI machine",
			files: map[string]string{
				"proc/self/cgroup":    "9:name=systemd:/\n5:cpu,cpuacct:/\n4:memory:/process_api/f46a\n0::/\n",
				"proc/self/mountinfo": rootMount + cpuMount + v1mount + hybridMount,
				"sys/fs/cgroup/memory/process_api/f46a/memory.limit_in_bytes": "9223372036854771712\n",
				"sys/fs/cgroup/memory/process_api/memory.limit_in_bytes":      "268435456\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes":                  "9223372036854771712\n",
				"sys/fs/cgroup/cpu,cpuacct/process_api/memory.limit_in_bytes": "1", // another controller's tree
			},
			want: []memLimit{{256 * mib, "the cgroup v1 memory.limit_in_bytes of /sys/fs/cgroup/memory/process_api"}},
		},
		{
			name: "a cgroup outside the mount",
			files: map[string]string{
				"proc/self/cgroup":         "0::/../elsewhere\n",
				"proc/self/mountinfo":      "30 22 0:26 /mine /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
				"sys/fs/cgroup/memory.max": "1000",
			},
		},
		{
			name: "a mount point with a space",
			files: map[string]string{
				"proc/self/cgroup":    "0::/a\n",
				"proc/self/mountinfo": "30 22 0:26 / /cg\\040v2 rw - cgroup2 cgroup2 rw\n",
				"cg v2/a/memory.max":  "300000000",
			},
			want: []memLimit{{300000000, "the cgroup v2 memory.max of /cg v2/a"}},
		},
		{
			name: "not a number",
			files: map[string]string{
				"proc/self/cgroup":         "0::/\n",
				"proc/self/mountinfo":      v2mount,
				"sys/fs/cgroup/memory.max": "lots",
			},
			wantErr: `memory.max holds "lots", not a number of bytes`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, data := range tc.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := cgroupLimits(root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("limits %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("limit %d: %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestWorkersFollowMachine: at GOMAXPROCS 16 on a machine of 64 GiB the
// default budget (16 GiB) runs a worker a CPU; with GOMEMLIMIT at 512 MiB
// the budget holds fewer; the bundle's bytes are the same. Frames and
// windows of 1 MiB keep the image small (20 frames) while a worker at the
// best level still holds 36 MiB, mostly hash tables.
func TestWorkersFollowMachine(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(16))
	const frame = 1 << 20
	img, _ := makeImage(t, t.TempDir(), imageCase{name: "frames", size: 24 * mib, regions: []region{{0, randBytes(41, 20*mib)}}})
	write := func() ([]byte, Result, string) {
		var b bytes.Buffer
		var why string
		res, err := Write(context.Background(), &b, img, testManifest, WithModTime(testTime), withMemory(64<<30),
			WithFrameSize(frame), WithWindowSize(frame), WithWorkersReport(func(n int, w string) { why = w }))
		if err != nil {
			t.Fatal(err)
		}
		return b.Bytes(), res, why
	}
	big, bigRes, bigWhy := write()
	t.Log(bigWhy)
	prev := debug.SetMemoryLimit(512 * mib)
	small, smallRes, smallWhy := write()
	debug.SetMemoryLimit(prev)
	t.Log(smallWhy)
	if bigRes.Workers != 16 || !strings.Contains(bigWhy, "on 16 workers, as many as the CPUs allow") {
		t.Errorf("64 GiB, 16 CPUs: %d workers (%s); want 16, one a CPU", bigRes.Workers, bigWhy)
	}
	if smallRes.Workers >= bigRes.Workers || !strings.Contains(smallWhy, "the memory budget allows") || !strings.Contains(smallWhy, "GOMEMLIMIT") {
		t.Errorf("GOMEMLIMIT 512 MiB: %d workers (%s); want fewer than %d, bound by GOMEMLIMIT", smallRes.Workers, smallWhy, bigRes.Workers)
	}
	if !bytes.Equal(big, small) {
		t.Errorf("the bundles differ: %d and %d bytes", len(big), len(small))
	}
}
