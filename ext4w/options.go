package ext4w

import (
	"fmt"
	"time"
)

// MinSize is the smallest image ext4w writes (SPEC "CLI": 64 MiB).
const MinSize = 64 << 20

// MaxSize is the largest image: 2^32 blocks, where resize_inode's
// reserved GDT blocks and 32-bit group counts stop.
const MaxSize = (1 << 32) * blockSize

// Option configures a Writer. Each option checks its own value.
type Option func(*options) error

type options struct {
	size        int64 // bytes; 0: sized from the content at Close
	inodes      uint64
	label       string
	uuid        *[16]byte
	hashSeed    *[16]byte
	defaultTime *time.Time // for entries the writer makes itself
	sbTime      int64      // superblock mkfs, write and check times
	salt        []byte
	warn        func(string)
}

// defaults is the one place defaults are set.
func defaults() options {
	return options{warn: func(string) {}}
}

// WithSize fixes the image size in bytes. It is rounded up to a whole
// block; the range is MinSize to MaxSize. Default: sized from the
// content at Close, 1.5x what it needs, rounded up to a MiB, at least
// MinSize.
func WithSize(n int64) Option {
	return func(o *options) error {
		if n < MinSize || n > MaxSize {
			return fmt.Errorf("ext4w: size %d out of range %d..%d", n, int64(MinSize), int64(MaxSize))
		}
		o.size = (n + blockSize - 1) / blockSize * blockSize
		return nil
	}
}

// WithInodes fixes the inode count. It is rounded up to fill whole inode
// table blocks in every group. Default: 1.5x the entries, and at least
// one per 16 KiB of image (mke2fs's inode_ratio).
func WithInodes(n uint64) Option {
	return func(o *options) error {
		if n == 0 || n >= 1<<32 {
			return fmt.Errorf("ext4w: inode count %d out of range 1..%d", n, uint64(1<<32-1))
		}
		o.inodes = n
		return nil
	}
}

// WithLabel sets the volume label, at most 16 bytes. Default: none.
func WithLabel(l string) Option {
	return func(o *options) error {
		if len(l) > 16 {
			return fmt.Errorf("ext4w: label %q is %d bytes, the limit is 16", l, len(l))
		}
		o.label = l
		return nil
	}
}

// WithUUID sets the filesystem UUID. Default: derived from a hash of
// everything written, so equal input gives an equal image.
func WithUUID(u [16]byte) Option {
	return func(o *options) error {
		o.uuid = &u
		return nil
	}
}

// WithHashSeed sets the htree hash seed. Default: derived like the UUID.
func WithHashSeed(s [16]byte) Option {
	return func(o *options) error {
		o.hashSeed = &s
		return nil
	}
}

// WithDefaultTime sets the times of entries the writer makes itself: the
// root and implicit parents when no entry names them, and lost+found.
// Default: the newest mtime of all entries written (0 if none).
func WithDefaultTime(t time.Time) Option {
	return func(o *options) error {
		o.defaultTime = &t
		return nil
	}
}

// WithSuperblockTime sets the superblock's mkfs, write and last-check
// times (SOURCE_DATE_EPOCH). Default: 0, since a future time makes e2fsck
// complain and the wall clock would break reproducibility.
func WithSuperblockTime(t time.Time) Option {
	return func(o *options) error {
		s := t.Unix()
		if s < 0 || s >= 1<<40 {
			return fmt.Errorf("ext4w: superblock time %v out of range", t)
		}
		o.sbTime = s
		return nil
	}
}

// WithSalt mixes extra bytes (such as the tool's version and flags) into
// the hash the default UUID and hash seed come from.
func WithSalt(b []byte) Option {
	return func(o *options) error {
		o.salt = append([]byte(nil), b...)
		return nil
	}
}

// WithWarn sets where warnings go (times clamped to ext4's range, for
// instance). Default: dropped.
func WithWarn(f func(msg string)) Option {
	return func(o *options) error {
		if f == nil {
			return fmt.Errorf("ext4w: nil warn function")
		}
		o.warn = f
		return nil
	}
}
