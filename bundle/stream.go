package bundle

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"
)

// tarStream is the uncompressed tar archive inside a bundle, kept as a list
// of segments: headers, manifest and sparse map as bytes, and the image's
// extents as ranges of the image file, read on demand. It is an io.ReaderAt
// so that frames can be compressed in parallel, each reading its own part,
// without the archive ever being held in memory.
//
// The archive is: manifest.json (a ustar header, preceded by a pax header
// only when the time needs one), then rootfs.ext4 as a GNU sparse 1.0
// member (a pax header with the GNU.sparse records, a ustar header named
// ./GNUSparseFile.0/rootfs.ext4, then the sparse map and the extents'
// bytes back to back), then two zero blocks. It is not padded to a
// 10 KiB record as GNU tar pads its output: no reader needs that, and it
// would only add zeros.
type tarStream struct {
	image *os.File
	segs  []segment // in order, back to back from offset 0
	size  int64
}

// segment is one piece of a tarStream.
type segment struct {
	off  int64  // offset in the stream
	len  int64  // length, never 0
	data []byte // the bytes, or nil for a range of the image
	src  int64  // offset in the image, when data is nil
}

// newTarStream lays out the bundle's tar archive for manifest and the image
// scanned into scan.
func newTarStream(image *os.File, manifest []byte, scan scanResult, mtime time.Time) (*tarStream, error) {
	var timeRecord []byte
	if needsPAXTime(mtime) {
		timeRecord = appendPAXRecord(nil, "mtime", paxTime(mtime))
	}

	head, err := appendMember(nil, ManifestName, ManifestName, int64(len(manifest)), mtime, timeRecord)
	if err != nil {
		return nil, err
	}
	head = append(head, manifest...)
	head = append(head, make([]byte, padBlock(int64(len(manifest))))...)

	sparseMap := appendSparseMap(nil, scan.extents, scan.size)
	stored := int64(len(sparseMap)) + scan.dataBytes
	var rec []byte
	rec = appendPAXRecord(rec, "GNU.sparse.major", "1")
	rec = appendPAXRecord(rec, "GNU.sparse.minor", "0")
	rec = appendPAXRecord(rec, "GNU.sparse.name", RootfsName)
	// Past 8 GiB the stored size overflows the ustar size field's octal
	// digits, and appendMember writes it in base-256 there instead, as GNU
	// tar does in its own format. There is no pax size record: Python's
	// tarfile takes a sparse member's size from whichever of size and
	// GNU.sparse.realsize comes last, and with a size record it recomputes
	// where the next header starts from the wrong place (CPython issues
	// 136601 and 136602, open): in one order it reports the stored size
	// and truncates the image to it, in the other it fails on any image
	// with holes. Without the record it reads the member right, and GNU
	// tar, bsdtar and Go's archive/tar read the base-256 field
	// (TestOraclesLargeMember).
	rec = appendPAXRecord(rec, "GNU.sparse.realsize", strconv.FormatInt(scan.size, 10))
	rec = append(rec, timeRecord...)
	if head, err = appendMember(head, RootfsName, sparseHeaderName(RootfsName), stored, mtime, rec); err != nil {
		return nil, err
	}
	head = append(head, sparseMap...)

	s := &tarStream{image: image}
	s.add(segment{data: head, len: int64(len(head))})
	for _, e := range scan.extents {
		s.add(segment{src: e.off, len: e.len})
	}
	tail := make([]byte, padBlock(stored)+2*tarBlockSize)
	s.add(segment{data: tail, len: int64(len(tail))})
	return s, nil
}

func (s *tarStream) add(sg segment) {
	if sg.len == 0 {
		return
	}
	sg.off = s.size
	s.segs = append(s.segs, sg)
	s.size += sg.len
}

// ReadAt implements io.ReaderAt.
func (s *tarStream) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("bundle: negative tar stream offset")
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].off+s.segs[i].len > off })
	n := 0
	for ; n < len(p) && i < len(s.segs); i++ {
		sg := &s.segs[i]
		rel := off - sg.off
		dst := p[n:min(int64(len(p)), int64(n)+sg.len-rel)]
		if sg.data != nil {
			copy(dst, sg.data[rel:])
		} else if m, err := s.image.ReadAt(dst, sg.src+rel); m < len(dst) {
			// An image that got shorter since it was scanned.
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n + m, fmt.Errorf("bundle: %s: reading at %d: %w", s.image.Name(), sg.src+rel+int64(m), err)
		}
		n += len(dst)
		off += int64(len(dst))
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// imageDone returns how much of the image is covered by the stream's first
// end bytes: everything before the last image byte they hold, or all of the
// image once they reach the end of the rootfs member. It turns frames
// written into progress.
func (s *tarStream) imageDone(end, imageSize int64) int64 {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].off >= end })
	// Segments before i start before end; the last of them holds end-1.
	for j := i - 1; j >= 0; j-- {
		sg := &s.segs[j]
		switch {
		case sg.data == nil:
			return sg.src + min(end-sg.off, sg.len)
		case j == len(s.segs)-1:
			// The tail: the rootfs member is complete.
			return imageSize
		}
	}
	return 0
}
