package tarflat

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/ext4pack/ext4pack/inflate"
)

// blockSize is tar's record unit: headers and data start on multiples of
// it (POSIX ustar).
const blockSize = 512

// Magic numbers of the compressed formats a rootfs tar comes in, and of
// those it does not, so that the latter get a clear message instead of
// "not a tar".
var (
	magicGzip  = []byte{0x1f, 0x8b}             // RFC 1952, ID1 ID2
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd} // RFC 8878, frame magic 0xFD2FB528 little-endian
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicBzip2 = []byte("BZh") // then the block size digit and the block magic 0x314159265359
	magicLz4   = []byte{0x04, 0x22, 0x4d, 0x18}
)

// openStream recognises the input's compression by its magic bytes and
// returns the uncompressed stream, and a function to release the
// decompressor.
func openStream(r io.Reader) (io.Reader, string, func(), error) {
	br := bufio.NewReaderSize(readErrors{r}, 1<<20)
	magic, err := br.Peek(blockSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, "", nil, err
	}
	switch {
	case len(magic) == 0:
		return nil, "", nil, badInput("the input is empty")
	case len(magic) == blockSize && headerProblem(magic) == "":
		// A valid first header (or an empty archive's zero block) wins
		// over any magic number its first bytes might happen to match.
		return br, "", func() {}, nil
	case bytes.HasPrefix(magic, magicGzip):
		// inflate reads every member (pigz, cat a.gz b.gz), as gzip -d
		// does, checking each one's CRC-32 and length; it is 1.75x as
		// fast as klauspost/compress's gzip on a Debian rootfs
		// (inflate's BenchmarkGunzip).
		gz, err := inflate.NewGzipReader(br)
		if err != nil {
			return nil, "", nil, &decodeError{"gzip", err}
		}
		return decoded{"gzip", gz}, "gzip", func() {}, nil
	case bytes.HasPrefix(magic, magicZstd):
		// One goroutine-free decoder: the tar is read in order anyway.
		// The frame checksums are verified (the default).
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, "", nil, &decodeError{"zstd", err}
		}
		return decoded{"zstd", zr}, "zstd", zr.Close, nil
	case bytes.HasPrefix(magic, magicXz):
		return nil, "", nil, badInput("the input is xz-compressed; only plain, gzip and zstd tars are read (decompress it with xz -d)")
	case bytes.HasPrefix(magic, magicBzip2) && len(magic) >= 10 && bytes.Equal(magic[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}):
		return nil, "", nil, badInput("the input is bzip2-compressed; only plain, gzip and zstd tars are read (decompress it with bzip2 -d)")
	case bytes.HasPrefix(magic, magicLz4):
		return nil, "", nil, badInput("the input is lz4-compressed; only plain, gzip and zstd tars are read (decompress it with lz4 -d)")
	}
	return br, "", func() {}, nil
}

// readErrors marks errors of the raw input, so that they are reported as
// I/O errors and not as a corrupt tar.
type readErrors struct{ r io.Reader }

func (r readErrors) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// decoded marks a decompressor's errors as such (see decodeError).
type decoded struct {
	codec string
	r     io.Reader
}

func (d decoded) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		var re *readError
		if !errors.As(err, &re) {
			err = &decodeError{d.codec, err}
		}
	}
	return n, err
}

// maxTrailing bounds what is read after the end-of-archive marker. Tar
// writers pad to a record (10 KiB for GNU tar); far more than that is
// not part of the archive, and a compressed stream can make terabytes of
// it from megabytes.
const maxTrailing = 64 << 20

// drain reads the rest of the stream after the end-of-archive marker, up
// to maxTrailing bytes, and returns how many bytes of it were not zeros
// and whether it stopped at the bound. Reading to the end makes gzip and
// zstd verify their trailing checksums, so a corrupt compressed stream is
// caught, and a writer piping into us does not get SIGPIPE.
func drain(r io.Reader) (nonzero, total int64, bounded bool, err error) {
	buf := make([]byte, 64<<10)
	for total < maxTrailing {
		n, err := r.Read(buf[:min(int64(len(buf)), maxTrailing-total)])
		total += int64(n)
		nonzero += countNonzero(buf[:n])
		if err == io.EOF {
			return nonzero, total, false, nil
		}
		if err != nil {
			return nonzero, total, false, err
		}
	}
	return nonzero, total, true, nil
}

// countNonzero counts the bytes of b that are not zero, a word at a time.
func countNonzero(b []byte) int64 {
	var n int64
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			for _, c := range b[:8] {
				if c != 0 {
					n++
				}
			}
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			n++
		}
	}
	return n
}
