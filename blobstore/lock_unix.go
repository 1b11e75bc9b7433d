//go:build !windows

package blobstore

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

var errWouldBlock = errors.New("would block")

// openIngest opens (or creates) an ingest file for reading and writing.
func openIngest(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

// openBlob opens a committed blob for reading.
func openBlob(path string) (*os.File, error) { return os.Open(path) }

// tryLock takes flock's exclusive lock on f without waiting. flock locks
// belong to the open file, so two opens in one process exclude each
// other as two processes do.
func tryLock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EWOULDBLOCK:
			return errWouldBlock
		}
		return err
	}
}

func unlock(f *os.File) { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN) }
