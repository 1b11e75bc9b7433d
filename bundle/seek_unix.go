//go:build (linux || darwin || freebsd) && !ext4pack_portable

package bundle

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// nextData returns the first range start..end at or after off that the file
// system reports as data, using SEEK_DATA and SEEK_HOLE. start == size means
// the rest of the file is a hole. A file system that cannot report holes
// makes the rest of the file one data range; the zero-block test in
// scanImage then finds the holes.
func nextData(f *os.File, off, size int64) (start, end int64, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var serr error
	// Control, unlike Fd, does not switch the file to blocking mode, and
	// keeps the descriptor from being closed while it is in use.
	cerr := rc.Control(func(fd uintptr) {
		start, serr = unix.Seek(int(fd), off, unix.SEEK_DATA)
		if serr != nil {
			return
		}
		end, serr = unix.Seek(int(fd), start, unix.SEEK_HOLE)
	})
	if cerr != nil {
		return 0, 0, cerr
	}
	switch {
	case serr == nil:
		return start, min(end, size), nil
	case errors.Is(serr, unix.ENXIO):
		// No data at or after off: the rest of the file is a hole.
		return size, size, nil
	case errors.Is(serr, unix.EINVAL), errors.Is(serr, unix.ENOTSUP), errors.Is(serr, unix.EOPNOTSUPP):
		// The kernel or file system does not know SEEK_DATA.
		return off, size, nil
	}
	return 0, 0, serr
}
