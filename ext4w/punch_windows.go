package ext4w

import (
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// NTFS stores a file's never-written ranges as zeros it allocates, unless
// the file is marked sparse: then they are holes, as on Linux and macOS.
// FSCTL_SET_SPARSE marks it; FSCTL_SET_ZERO_DATA punches a hole into a
// sparse file (Windows file system control codes, "Sparse files").

// MarkSparse marks f sparse, so that the ranges never written are holes, as
// they are on Linux and macOS without asking. A file system without sparse
// files (FAT) refuses; the file is still right, only not sparse.
func MarkSparse(f *os.File) error {
	return control(f, windows.FSCTL_SET_SPARSE, nil, 0)
}

// fileZeroDataInformation is FILE_ZERO_DATA_INFORMATION.
type fileZeroDataInformation struct {
	FileOffset      int64
	BeyondFinalZero int64
}

func punchHole(f *os.File, off, n int64) error {
	in := fileZeroDataInformation{FileOffset: off, BeyondFinalZero: off + n}
	return control(f, windows.FSCTL_SET_ZERO_DATA, (*byte)(unsafe.Pointer(&in)), uint32(unsafe.Sizeof(in)))
}

// control sends a file system control code with input in to f.
func control(f *os.File, code uint32, in *byte, size uint32) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		var returned uint32
		ioErr = windows.DeviceIoControl(windows.Handle(fd), code, in, size, nil, 0, &returned, nil)
	}); err != nil {
		return err
	}
	return ioErr
}
