package bundle

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Option configures Write. Each option checks its own value and returns an
// error from Write when the value is out of range.
type Option func(*options) error

// Defaults for the options. They are set in one place, setDefaults.
const (
	// DefaultWindowSize is the zstd window: the largest that stock
	// `zstd -d` accepts without --long or --memory (its default
	// windowLogMax is 27), and large enough to find matches between
	// files far apart in the image.
	DefaultWindowSize = 128 << 20

	// DefaultFrameSize is the amount of tar stream compressed into each
	// independent zstd frame. Frames are the unit of parallel work; their
	// boundaries sit at fixed offsets of the tar stream, so the output does
	// not depend on how many run at once. A frame no larger than the
	// window keeps an encoder's history to the window (a larger frame
	// needs twice the window: 163 MiB against 291 MiB a worker at the
	// best level), so that one worker fits a memory budget of 256 MiB
	// and two fit MinMemoryBudget. Frames of twice the window lost
	// fewer matches at the boundaries: on a Debian rootfs image 256 MiB
	// frames were 0.7% smaller, on 712 MB of Debian's /usr 0.4%
	// (BENCHMARKS.md, the compression table).
	DefaultFrameSize = 128 << 20

	// MinMemoryBudget is the floor of the default memory budget. SPEC
	// "Bundle": the budget is a quarter of the machine's physical memory,
	// never under 512 MiB (two workers at the defaults), lowered by a
	// cgroup limit or GOMEMLIMIT; the budget sets how many frames are
	// compressed at once, never the bytes.
	MinMemoryBudget = 512 << 20

	// MaxWindowSize is the largest window WithWindowSize accepts: frames
	// with a larger window need `zstd -d --long=N` or --memory to decode.
	MaxWindowSize = 128 << 20

	// MinFrameSize and MaxFrameSize bound WithFrameSize.
	MinFrameSize = 64 << 10
	MaxFrameSize = 1 << 30
)

type options struct {
	modTime     time.Time
	concurrency int
	progress    func(done, total int64)
	checkRootfs func(head []byte, size int64) error
	level       zstd.EncoderLevel
	windowSize  int
	frameSize   int64
	budget      int64  // 0: the default, from the machine's memory
	budgetFrom  string // what set budget, for messages
	// limits returns the machine's memory limits that may lower budget:
	// systemLimits, or fakes in tests.
	limits func() ([]memLimit, error)
	// physMem returns the machine's physical memory, for the default
	// budget: physicalMemory, or fakes in tests.
	physMem func() (int64, error)
	// onWorkers, when set, hears how many workers compress and why.
	onWorkers func(workers int, why string)
}

func (o *options) setDefaults() {
	*o = options{
		modTime:     time.Unix(0, 0),
		concurrency: runtime.GOMAXPROCS(0),
		level:       zstd.SpeedBestCompression,
		windowSize:  DefaultWindowSize,
		frameSize:   DefaultFrameSize,
		limits:      systemLimits,
		physMem:     physicalMemory,
	}
}

func newOptions(opts []Option) (options, error) {
	var o options
	o.setDefaults()
	for _, opt := range opts {
		if opt == nil {
			return o, errors.New("bundle: nil option")
		}
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// WithModTime sets the modification time of both members of the bundle.
// The default is the Unix epoch, so that a caller that forgets it still gets
// reproducible output; callers pass SOURCE_DATE_EPOCH or the newest time of
// the input. Times before 1970 are rejected. Sub-second times and times
// past the year 2242 (the end of the ustar field) are stored in a PAX
// mtime record.
func WithModTime(t time.Time) Option {
	return func(o *options) error {
		if t.Before(time.Unix(0, 0)) {
			return fmt.Errorf("bundle: modification time %s is before 1970", t.UTC().Format(time.RFC3339))
		}
		o.modTime = t
		return nil
	}
}

// WithConcurrency sets how many frames are compressed at once, at most. The
// default is GOMAXPROCS; the range is 1 and up. The output bytes do not
// depend on it. Write runs fewer workers when the memory budget holds fewer
// (see WithMemoryBudget), and never more than there are frames.
func WithConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("bundle: concurrency %d is below 1", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithProgress sets a function Write calls as work completes, for a progress
// bar. done counts image bytes hashed by the first pass plus image bytes
// compressed and written by the second, so total is twice the image size.
// Write calls it on its own goroutine, done never decreases, and the last
// call has done == total. The default is no reporting.
func WithProgress(fn func(done, total int64)) Option {
	return func(o *options) error {
		o.progress = fn
		return nil
	}
}

// WithRootfsCheck sets a function ExtractRootfs calls with the start of
// the bundle's image (its first 4 KiB, or all of a smaller one) and the
// image's size, before it hashes or writes anything: an error from it
// stops the extraction, wrapped with the member's name. It is how a
// caller that knows the image's format refuses, at once, a bundle that
// claims terabytes of holes. The default is no check.
func WithRootfsCheck(check func(head []byte, size int64) error) Option {
	return func(o *options) error {
		o.checkRootfs = check
		return nil
	}
}

// WithMemoryBudget sets the memory, in bytes, that Write plans its
// compression workers for: the budget of the whole process, of which
// Write keeps memoryReserve for everything but the workers. The default is
// a quarter of the machine's physical memory, and at least
// MinMemoryBudget; the range is 1 and up. A cgroup memory limit or a
// GOMEMLIMIT below it lowers it (see PlanMemory). The budget decides how
// many frames are compressed at once, never the output bytes; a budget too
// small for one worker is an error (ErrMemoryBudget).
func WithMemoryBudget(n int64) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("bundle: memory budget %d is below 1 byte", n)
		}
		o.budget, o.budgetFrom = n, "bundle.WithMemoryBudget"
		return nil
	}
}

// WithWorkersReport sets a function that Write calls once, before it
// compresses, with how many workers compress at once and a line saying
// why: the CPUs, the frames and what the memory budget holds (make-bundle
// prints it with --verbose).
func WithWorkersReport(f func(workers int, why string)) Option {
	return func(o *options) error {
		o.onWorkers = f
		return nil
	}
}

// WithLevel sets the zstd encoder level. The default, and what SPEC asks
// for, is zstd.SpeedBestCompression. Any of the four zstd.Speed* constants
// is accepted; ParseLevel reads their names.
func WithLevel(l zstd.EncoderLevel) Option {
	return func(o *options) error {
		switch l {
		case zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression:
			o.level = l
			return nil
		}
		return fmt.Errorf("bundle: unknown zstd encoder level %d", int(l))
	}
}

// Levels are the names of the four zstd levels, fastest first, as
// ParseLevel reads them and make-bundle's --compression takes them.
var Levels = []string{"fastest", "default", "better", "best"}

// ParseLevel returns the zstd level called name, one of Levels:
// klauspost/compress/zstd's own names for its four levels.
func ParseLevel(name string) (zstd.EncoderLevel, error) {
	for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression} {
		if name == l.String() {
			return l, nil
		}
	}
	return 0, fmt.Errorf("bundle: unknown compression level %q (want %s)", name, strings.Join(Levels, ", "))
}

// WithWindowSize sets the zstd window in bytes: a power of two from
// zstd.MinWindowSize (1 KiB) to MaxWindowSize (128 MiB). The default is
// DefaultWindowSize. The upper bound keeps bundles decodable by stock
// `zstd -d`.
func WithWindowSize(n int) Option {
	return func(o *options) error {
		switch {
		case n < zstd.MinWindowSize || n > MaxWindowSize:
			return fmt.Errorf("bundle: window size %d is outside %d..%d", n, zstd.MinWindowSize, MaxWindowSize)
		case n&(n-1) != 0:
			return fmt.Errorf("bundle: window size %d is not a power of two", n)
		}
		o.windowSize = n
		return nil
	}
}

// WithFrameSize sets how many bytes of tar stream go into each zstd frame,
// from MinFrameSize (64 KiB) to MaxFrameSize (1 GiB). The default is
// DefaultFrameSize. Changing it changes the output bytes.
func WithFrameSize(n int64) Option {
	return func(o *options) error {
		if n < MinFrameSize || n > MaxFrameSize {
			return fmt.Errorf("bundle: frame size %d is outside %d..%d", n, MinFrameSize, MaxFrameSize)
		}
		o.frameSize = n
		return nil
	}
}
