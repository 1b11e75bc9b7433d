package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// ErrFormat is returned, wrapped, for a stream that is not a well-formed
// bundle: not zstd, not tar, members missing, extra or out of order, or a
// manifest that does not parse.
var ErrFormat = errors.New("bundle: not a valid bundle")

// ErrChecksum is returned, wrapped, when the image in a bundle does not
// match the size or SHA-256 its manifest gives.
var ErrChecksum = errors.New("bundle: rootfs does not match its manifest")

// reader reads the members of a bundle in order.
type reader struct {
	zr *zstd.Decoder
	tr *tar.Reader
}

// newReader returns a reader of the bundle r. concurrency is the zstd
// decoder's: 1 decodes on the calling goroutine and reads r only as far as
// needed, more decode blocks ahead in the background.
func newReader(r io.Reader, concurrency int) (*reader, error) {
	// Bundles are written with windows of at most MaxWindowSize; a larger
	// one is not ours, and refusing it keeps a corrupt header from
	// costing gigabytes of memory.
	zr, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(MaxWindowSize), zstd.WithDecoderConcurrency(concurrency))
	if err != nil {
		return nil, fmt.Errorf("bundle: zstd decoder: %w", err)
	}
	return &reader{zr: zr, tr: tar.NewReader(zr)}, nil
}

func (r *reader) close() { r.zr.Close() }

// next returns the header of the next member, which must be a regular file
// called name.
func (r *reader) next(name string) (*tar.Header, error) {
	hdr, err := r.tr.Next()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: no %s member", ErrFormat, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading the %s header: %w", ErrFormat, name, err)
	}
	if got := strings.TrimPrefix(hdr.Name, "./"); got != name || hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%w: member %q (type %q) where regular file %s belongs", ErrFormat, hdr.Name, hdr.Typeflag, name)
	}
	return hdr, nil
}

// manifest reads manifest.json, the first member.
func (r *reader) manifest() (Manifest, error) {
	var m Manifest
	hdr, err := r.next(ManifestName)
	if err != nil {
		return m, err
	}
	if hdr.Size > maxManifestSize {
		return m, fmt.Errorf("%w: %s is %d bytes, over %d", ErrFormat, ManifestName, hdr.Size, maxManifestSize)
	}
	data, err := io.ReadAll(r.tr)
	if err != nil {
		return m, fmt.Errorf("%w: reading %s: %w", ErrFormat, ManifestName, err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%w: %s: %w", ErrFormat, ManifestName, err)
	}
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return m, nil
}

// ReadManifest reads the manifest of the bundle read from r. It reads r
// only as far as the manifest, give or take a zstd block.
func ReadManifest(r io.Reader) (Manifest, error) {
	br, err := newReader(r, 1)
	if err != nil {
		return Manifest{}, err
	}
	defer br.close()
	return br.manifest()
}

// ExtractRootfs reads the bundle from r, writes its image to dst and
// returns its manifest. dst is truncated first, then written sparsely:
// blocks of zeros become holes, as Write found them. The image's size and
// SHA-256 are checked against the manifest (ErrChecksum), and the bundle
// must hold nothing after the image. On error dst holds a partial image.
// Extraction stops early when ctx is done. Of the options, WithProgress
// and WithRootfsCheck apply: the first is told how much of the image was
// hashed. Where files are sparse only when marked so (Windows), the caller
// marks dst sparse first.
//
// Hashing is the long part: it reads the image's holes as zeros, and a
// bundle of a few hundred bytes can claim terabytes of them. So before any
// hashing, ExtractRootfs refuses a bundle whose manifest claims more than
// MaxRootfsSize (ErrFormat), whose rootfs member is not the size the
// manifest says (ErrChecksum), or whose image's start the check of
// WithRootfsCheck refuses: each in the time it takes to decompress the
// first few KiB. Without a check, a bundle can make ExtractRootfs hash up
// to MaxRootfsSize of holes; package ext4pack passes one that wants a
// valid ext4 superblock for a filesystem of the image's size.
func ExtractRootfs(ctx context.Context, r io.Reader, dst *os.File, opts ...Option) (Manifest, error) {
	o, err := newOptions(opts)
	if err != nil {
		return Manifest{}, err
	}
	// The zstd package's default: decoding is mostly sequential, and
	// more decoders than this gain little.
	br, err := newReader(r, min(4, runtime.GOMAXPROCS(0)))
	if err != nil {
		return Manifest{}, err
	}
	defer br.close()
	m, err := br.manifest()
	if err != nil {
		return m, err
	}
	hdr, err := br.next(m.Rootfs)
	if err != nil {
		return m, err
	}
	if hdr.Size != m.RootfsSizeBytes {
		return m, fmt.Errorf("%w: %s is %d bytes, the manifest says %d", ErrChecksum, m.Rootfs, hdr.Size, m.RootfsSizeBytes)
	}

	// The first block, superblock included, is read before anything is
	// hashed or written, and checked.
	buf := make([]byte, readChunk)
	head := buf[:min(hdr.Size, holeBlock)]
	if _, err := io.ReadFull(br.tr, head); err != nil {
		return m, fmt.Errorf("%w: reading %s at 0: %w", ErrFormat, m.Rootfs, err)
	}
	if o.checkRootfs != nil {
		if err := o.checkRootfs(head, hdr.Size); err != nil {
			return m, fmt.Errorf("%s: %w", m.Rootfs, err)
		}
	}

	if err := dst.Truncate(0); err != nil {
		return m, fmt.Errorf("bundle: %w", err)
	}
	h := sha256.New()
	for off := int64(0); off < hdr.Size; {
		if err := ctx.Err(); err != nil {
			return m, err
		}
		b := buf[:min(hdr.Size-off, readChunk)]
		if off == 0 {
			// The head is in b already; read the rest of the chunk.
			if _, err := io.ReadFull(br.tr, b[len(head):]); err != nil {
				return m, fmt.Errorf("%w: reading %s at %d: %w", ErrFormat, m.Rootfs, len(head), err)
			}
		} else if _, err := io.ReadFull(br.tr, b); err != nil {
			return m, fmt.Errorf("%w: reading %s at %d: %w", ErrFormat, m.Rootfs, off, err)
		}
		h.Write(b) // hash.Hash's Write never fails.
		for i := 0; i < len(b); i += holeBlock {
			blk := b[i:min(i+holeBlock, len(b))]
			if bytes.Equal(blk, zeros[:len(blk)]) {
				continue // left as a hole; Truncate below sets the size
			}
			if _, err := dst.WriteAt(blk, off+int64(i)); err != nil {
				return m, fmt.Errorf("bundle: %w", err)
			}
		}
		off += int64(len(b))
		if o.progress != nil {
			o.progress(off, hdr.Size)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.RootfsSHA256 {
		return m, fmt.Errorf("%w: %s has SHA-256 %s, the manifest says %s", ErrChecksum, m.Rootfs, got, m.RootfsSHA256)
	}
	if err := dst.Truncate(hdr.Size); err != nil {
		return m, fmt.Errorf("bundle: %w", err)
	}

	if hdr, err := br.tr.Next(); err != io.EOF {
		if err == nil {
			return m, fmt.Errorf("%w: extra member %q after %s", ErrFormat, hdr.Name, m.Rootfs)
		}
		return m, fmt.Errorf("%w: after %s: %w", ErrFormat, m.Rootfs, err)
	}
	// Read the zstd stream to its end, so that its last checksum is
	// verified and trailing garbage is noticed.
	if _, err := io.Copy(io.Discard, br.zr); err != nil {
		return m, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return m, nil
}
