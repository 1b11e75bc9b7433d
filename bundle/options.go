package bundle

import (
	"errors"
	"fmt"
	"runtime"
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
	// not depend on how many run at once. Larger frames lose fewer matches
	// at the boundaries but give fewer frames to share out: on a Debian
	// rootfs image, frames of 256 MiB came within 4.7% of `zstd -19`'s
	// size and frames of 128 MiB within 5.1% (the table in bench_test.go).
	DefaultFrameSize = 256 << 20

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
	level       zstd.EncoderLevel
	windowSize  int
	frameSize   int64
}

func (o *options) setDefaults() {
	*o = options{
		modTime:     time.Unix(0, 0),
		concurrency: runtime.GOMAXPROCS(0),
		level:       zstd.SpeedBestCompression,
		windowSize:  DefaultWindowSize,
		frameSize:   DefaultFrameSize,
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

// WithConcurrency sets how many frames are compressed at once. The default
// is GOMAXPROCS; the range is 1 and up. The output bytes do not depend on it.
// At the default window and frame size each worker holds about 550 MiB
// (the encoder's history is twice the window, its match tables 34 MiB,
// plus the compressed frame), and Write never runs more workers than
// there are frames.
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

// WithLevel sets the zstd encoder level. The default, and what SPEC asks
// for, is zstd.SpeedBestCompression; lower levels exist for tests and
// benchmarks. Any of the four zstd.Speed* constants is accepted.
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
