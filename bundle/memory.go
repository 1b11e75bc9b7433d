package bundle

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// ErrMemoryBudget is returned, wrapped, by Write and PlanMemory when the
// memory budget cannot hold even one compression worker. The message says
// what one needs and what set the budget.
var ErrMemoryBudget = errors.New("bundle: the memory budget cannot hold one compression worker")

// memoryReserve is the part of the budget left to everything but the
// compression workers: the Go runtime and the binary, the caller's heap
// and buffers, the first pass's read buffer, the tar stream's segment list
// and the collector's slack. Measured: `ext4pack image` of a Debian rootfs
// peaks at 30 MiB (BENCHMARKS.md), and in TestMemoryBudgetRSS the test
// binary with two workers of 51 MiB peaked at 123 MiB, 21 MiB over them.
// The reserve is three times that, for callers with larger heaps.
const memoryReserve = 64 << 20

// Sizes inside klauspost/compress/zstd v1.20.4 that decide an encoder's
// memory (its enc_base.go, enc_*.go and encoder.go): the largest block,
// the history's floor, and each level's hash tables, as table entries of
// 8 bytes times 2^bits. TestWorkerMemory holds the estimate against the
// measured heap.
const (
	zstdBlockSize = 128 << 10 // maxCompressedBlockSize: a block, and the encoder's input buffer
	zstdMinHist   = 1 << 20   // ensureHist: the history is at least 1 MiB unless lowMem
	// encoderSlack covers the block encoder's buffers (literals,
	// sequences, output, entropy tables): measured at about 0.6 MiB.
	encoderSlack = 1 << 20
)

// zstdTables is the size of each level's hash tables.
var zstdTables = map[zstd.EncoderLevel]int64{
	zstd.SpeedFastest:           8 << 15,       // tableBits 15
	zstd.SpeedDefault:           8<<17 + 8<<15, // dFastLongTableBits 17, dFastShortTableBits 15
	zstd.SpeedBetterCompression: 8<<19 + 8<<13, // betterLongTableBits 19, betterShortTableBits 13
	zstd.SpeedBestCompression:   8<<22 + 8<<18, // bestLongTableBits 22, bestShortTableBits 18
}

// heldShare is the share of a frame that each worker beyond the first
// brings room for: output of frames finished ahead of their turn waits in
// memory. A frame of text or binaries compresses to about a quarter at
// the higher levels; a worker that runs out of room waits until its frame
// is the one being written, and then writes straight through.
const heldShare = 4

// encoderWindow is the window an encoder for frames of frameSize gets:
// window, or the smallest power of two that holds a whole frame when that
// is less, since no match reaches back past the start of its frame. A
// function of the options alone, as the output must be.
func encoderWindow(window int, frameSize int64) int {
	w := zstd.MinWindowSize
	for w < window && int64(w) < frameSize {
		w <<= 1
	}
	return w
}

// lowMemEncoder says whether the encoder keeps a history of the window and
// one block (zstd.WithLowerEncoderMem) rather than twice the window. It
// does when a frame fits the window: the history then never slides, so the
// output is the same either way (TestLowMemSameBytes). For a frame larger
// than the window the smaller history would slide at every block, moving
// the whole window each time.
func lowMemEncoder(window int, frameSize int64) bool {
	return frameSize <= int64(window)
}

// workerMemory is what one compression worker holds: its encoder's
// history and hash tables and buffers.
func workerMemory(level zstd.EncoderLevel, window int, frameSize int64) int64 {
	w := int64(encoderWindow(window, frameSize))
	var hist int64
	switch {
	case lowMemEncoder(int(w), frameSize):
		hist = w + zstdBlockSize
	case w <= zstdBlockSize:
		hist = max(w+zstdBlockSize, zstdMinHist)
	default:
		hist = max(2*w, zstdMinHist)
	}
	return hist + zstdTables[level] + zstdBlockSize + encoderSlack
}

// Plan is how Write fits its compression into the memory budget. It
// depends on the options and on the machine (GOMAXPROCS, cgroup limits,
// GOMEMLIMIT), and decides only how much work runs at once: the output
// bytes depend on the options alone.
type Plan struct {
	// Workers is how many frames are compressed at once, at most; Write
	// runs fewer when the image has fewer frames.
	Workers int
	// WorkerBytes is what one worker holds: its encoder's history, hash
	// tables and buffers.
	WorkerBytes int64
	// HeldBytes is how much compressed output frames finished ahead of
	// their turn may hold in all; 0 with one worker, which writes
	// straight through.
	HeldBytes int64
	// Needs is the smallest budget that holds one worker.
	Needs int64
	// Budget is the memory budget: the option's or the default (a
	// quarter of the machine's memory, at least MinMemoryBudget), or a
	// lower limit of the machine's.
	Budget int64
	// BudgetFrom says what set Budget.
	BudgetFrom string
	// CPUs is WithConcurrency's cap (GOMAXPROCS by default), and
	// BudgetWorkers how many workers the budget holds: Workers is the
	// smaller.
	CPUs, BudgetWorkers int
}

// Explain says how many workers compress frames frames at once, and why:
// the fewest of the CPUs, the frames and what the budget holds.
func (p Plan) Explain(frames int64, frameSize int64) (int, string) {
	workers := int(min(int64(p.Workers), max(frames, 1)))
	var bound string
	switch {
	case int64(workers) == frames && int64(p.Workers) > frames:
		bound = "the image's frames allow"
	case workers == p.CPUs && p.CPUs < p.BudgetWorkers:
		bound = "the CPUs allow"
	case workers == p.CPUs && workers == p.BudgetWorkers:
		bound = "the CPUs and the memory budget allow"
	default:
		bound = "the memory budget allows"
	}
	plural := "s"
	if workers == 1 {
		plural = ""
	}
	return workers, fmt.Sprintf("compressing on %d worker%s, as many as %s: %d CPUs (GOMAXPROCS), %d frames of %s, and a memory budget of %s (%s) that holds %d workers of %s",
		workers, plural, bound, p.CPUs, frames, mibs(frameSize), mibs(p.Budget), p.BudgetFrom, p.BudgetWorkers, mibs(p.WorkerBytes))
}

// defaultBudget is SPEC's default budget: a quarter of physical memory,
// never under MinMemoryBudget.
func (o *options) defaultBudget() (int64, string) {
	phys, err := o.physMem()
	switch {
	case err != nil || phys <= 0:
		return MinMemoryBudget, fmt.Sprintf("the default's floor of %s (the machine's memory is not known: %v)", mibs(MinMemoryBudget), err)
	case phys/4 < MinMemoryBudget:
		return MinMemoryBudget, fmt.Sprintf("the default's floor of %s (a quarter of the machine's %s of memory is less)", mibs(MinMemoryBudget), mibs(phys))
	}
	return phys / 4, fmt.Sprintf("the default: a quarter of the machine's %s of memory", mibs(phys))
}

// PlanMemory returns the plan Write makes with opts on this machine, or an
// error wrapping ErrMemoryBudget, with the plan's Needs and Budget filled
// in, when the budget cannot hold one worker;
// make-bundle calls it before it builds the image, to fail early. The
// budget is WithMemoryBudget's (by default a quarter of the machine's
// physical memory, at least MinMemoryBudget), lowered to
// the machine's limits where they are lower: GOMEMLIMIT, and on Linux the
// cgroup memory limits of this process's cgroup and its ancestors
// (memory.max in cgroup v2, memory.limit_in_bytes in v1), as
// /proc/self/cgroup and /proc/self/mountinfo locate them.
func PlanMemory(opts ...Option) (Plan, error) {
	o, err := newOptions(opts)
	if err != nil {
		return Plan{}, err
	}
	return o.plan()
}

// plan fits the workers into the budget: each holds workerMemory, each
// beyond the first brings room to hold a heldShare of a frame, and
// memoryReserve is kept for the rest of the process.
func (o *options) plan() (Plan, error) {
	limits, err := o.limits()
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Budget: o.budget, BudgetFrom: o.budgetFrom, CPUs: o.concurrency}
	if p.Budget == 0 {
		p.Budget, p.BudgetFrom = o.defaultBudget()
	}
	for _, l := range limits {
		if l.bytes < p.Budget {
			p.Budget, p.BudgetFrom = l.bytes, l.from
		}
	}
	p.WorkerBytes = workerMemory(o.level, o.windowSize, o.frameSize)
	p.Needs = p.WorkerBytes + memoryReserve
	avail := p.Budget - memoryReserve
	if avail < p.WorkerBytes {
		return p, fmt.Errorf("%w: compressing at level %s with a %s window needs %s (%s for the encoder, %s for the rest), but the budget is %s, set by %s",
			ErrMemoryBudget, o.level, mibs(int64(encoderWindow(o.windowSize, o.frameSize))), mibs(p.Needs),
			mibs(p.WorkerBytes), mibs(memoryReserve), mibs(p.Budget), p.BudgetFrom)
	}
	held := o.frameSize / heldShare
	n := 1 + (avail-p.WorkerBytes)/(p.WorkerBytes+held)
	p.BudgetWorkers = int(min(n, 1<<20))
	p.Workers = min(p.BudgetWorkers, o.concurrency)
	if p.Workers > 1 {
		p.HeldBytes = avail - int64(p.Workers)*p.WorkerBytes
	}
	return p, nil
}

// mibs formats n bytes in MiB, rounded up, for messages.
func mibs(n int64) string {
	return fmt.Sprintf("%d MiB", (n+1<<20-1)>>20)
}
