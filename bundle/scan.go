package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

// holeBlock is the unit in which an image is split into data and holes: the
// 4 KiB block of the ext4 images ext4pack writes (SPEC, "The ext4 image").
// A whole block of zeros is a hole, whether the file system stored it as a
// hole or as written zeros. The sparse map therefore depends only on the
// image's bytes, never on how a file system reports holes: SEEK_HOLE is
// only as fine as the file system's allocation unit (tmpfs, ext4, xfs and
// APFS all differ, and some report no holes at all), so its answers are used
// to skip large holes fast and the zero test decides the rest. The last
// block of an image whose size is not a multiple of holeBlock is a hole when
// its bytes are all zero.
const holeBlock = 4096

// readChunk is how much of a data range is read at once. A multiple of
// holeBlock.
const readChunk = 1 << 20

// zeros is a source of zero bytes for hashing holes and comparing blocks.
// It is never written.
var zeros [readChunk]byte

// maxSparseMap is the largest sparse map written, padding included.
// archive/tar refuses a map over 1 MiB (maxSpecialFileSize in its
// reader); maps that would be larger have their smallest holes filled in
// (fitSparseMap). A variable so that tests can lower it.
var maxSparseMap = 1 << 20

// extent is a run of image bytes stored in the bundle; the rest are holes.
type extent struct {
	off, len int64
}

// scanResult is what the first pass learns about an image.
type scanResult struct {
	size      int64
	sha256    [sha256.Size]byte // of all size bytes, holes as zeros
	extents   []extent          // in order, not adjacent, not empty
	dataBytes int64             // sum of the extents' lengths
}

// scanImage hashes the first size bytes of f and finds its data extents.
// Ranges the file system reports as holes are hashed as zeros without being
// read. progress, when not nil, is called with the bytes covered so far.
// It reads with ReadAt, and restores the file offset that SEEK_DATA and
// SEEK_HOLE move.
func scanImage(ctx context.Context, f *os.File, size int64, progress func(done int64)) (res scanResult, err error) {
	res.size = size
	name := f.Name()
	offset, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return res, fmt.Errorf("bundle: %s: %w", name, err)
	}
	defer func() {
		if _, serr := f.Seek(offset, io.SeekStart); serr != nil && err == nil {
			err = fmt.Errorf("bundle: %s: restoring offset: %w", name, serr)
		}
	}()

	// hash.Hash's Write never returns an error, so its results are not
	// checked below.
	h := sha256.New()
	buf := make([]byte, readChunk)
	var pos int64 // everything before pos is hashed and classified
	for pos < size {
		start, end, err := nextData(f, pos, size)
		if err != nil {
			return res, fmt.Errorf("bundle: %s: finding holes: %w", name, err)
		}
		if start < pos || end < start || start > size {
			return res, fmt.Errorf("bundle: %s: file system reported data range %d..%d at offset %d", name, start, end, pos)
		}
		if start < size {
			// The file system's ranges need not fall on holeBlock
			// boundaries: widen the data range to whole blocks, so
			// that the zero test below sees every block that holds
			// any data.
			start = max(pos, start&^(holeBlock-1))
			end = min(size, (end+holeBlock-1)&^(holeBlock-1))
		}
		for pos < start {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			n := min(start-pos, readChunk)
			h.Write(zeros[:n])
			pos += n
			if progress != nil {
				progress(pos)
			}
		}
		for pos < end {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			b := buf[:min(end-pos, readChunk)]
			if _, err := f.ReadAt(b, pos); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return res, fmt.Errorf("bundle: %s: reading at %d: %w", name, pos, err)
			}
			h.Write(b)
			for i := 0; i < len(b); i += holeBlock {
				blk := b[i:min(i+holeBlock, len(b))]
				if !bytes.Equal(blk, zeros[:len(blk)]) {
					res.extents = addExtent(res.extents, pos+int64(i), int64(len(blk)))
				}
			}
			pos += int64(len(b))
			if progress != nil {
				progress(pos)
			}
		}
	}
	h.Sum(res.sha256[:0])
	res.extents = fitSparseMap(res.extents, size, maxSparseMap)
	for _, e := range res.extents {
		res.dataBytes += e.len
	}
	return res, nil
}

// addExtent appends the data run off..off+n to ext, merging it into the last
// extent when they touch.
func addExtent(ext []extent, off, n int64) []extent {
	if k := len(ext) - 1; k >= 0 && ext[k].off+ext[k].len == off {
		ext[k].len += n
		return ext
	}
	return append(ext, extent{off, n})
}

// fitSparseMap returns ext, or ext with holes filled in, so that its sparse
// map takes at most limit bytes. It fills the holes of up to one block, then
// two, four and so on, until the map fits. The result depends only on ext,
// so the map stays reproducible; the filled holes are stored as zeros, which
// cost the compressor next to nothing.
func fitSparseMap(ext []extent, size int64, limit int) []extent {
	for gap := int64(holeBlock); len(ext) > 1 && len(appendSparseMap(nil, ext, size)) > limit; gap *= 2 {
		merged := ext[:1]
		for _, e := range ext[1:] {
			last := &merged[len(merged)-1]
			if e.off-(last.off+last.len) <= gap {
				last.len = e.off + e.len - last.off
				continue
			}
			merged = append(merged, e)
		}
		ext = merged
	}
	return ext
}
