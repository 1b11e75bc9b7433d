package ext4w

import (
	"errors"
	"fmt"
)

// Sentinel errors. They are wrapped in an *EntryError where an entry is
// involved, so test them with errors.Is.
var (
	// ErrNoSpace means the content does not fit the fixed image size. The
	// writer keeps counting after it is returned; Close reports the total
	// in a *SizeError.
	ErrNoSpace = errors.New("ext4w: no space left in the image")
	// ErrTooManyInodes means more entries than the fixed inode count.
	ErrTooManyInodes = errors.New("ext4w: not enough inodes")
	// ErrExist means the name exists and cannot be replaced (a directory
	// cannot be hardlinked, for instance).
	ErrExist = errors.New("ext4w: file exists")
	// ErrNotExist means the name, or the target of a hardlink, does not
	// exist.
	ErrNotExist = errors.New("ext4w: no such file or directory")
	// ErrNotDir means a path component is not a directory.
	ErrNotDir = errors.New("ext4w: not a directory")
	// ErrIsDir means the operation needs a non-directory.
	ErrIsDir = errors.New("ext4w: is a directory")
	// ErrBadName means the name is empty, absolute, holds a "." or ".."
	// component, a NUL byte, or a component longer than 255 bytes.
	ErrBadName = errors.New("ext4w: invalid name")
	// ErrWriteTooLong means Write got more bytes than File.Size declared.
	ErrWriteTooLong = errors.New("ext4w: write too long")
	// ErrShortWrite means an entry got fewer bytes than File.Size declared.
	ErrShortWrite = errors.New("ext4w: missed writing the file's data")
	// ErrInvalid means a File field is out of what ext4 can hold.
	ErrInvalid = errors.New("ext4w: invalid file metadata")
	// ErrTooManyLinks means a file would get more than 65,000 links.
	ErrTooManyLinks = errors.New("ext4w: too many links")
	// ErrClosed means the Writer was used after Close or after a fatal error.
	ErrClosed = errors.New("ext4w: writer closed")
)

// EntryError records an error and the entry that caused it, like
// os.PathError.
type EntryError struct {
	Op   string // "create", "write", "link", "remove", "close"
	Name string // the entry's path inside the image
	Err  error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.Name, e.Op, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

func entryErr(op, name string, err error) error {
	return &EntryError{Op: op, Name: name, Err: err}
}

// SizeError reports that the content needs more room than the image was
// given. It wraps ErrNoSpace or ErrTooManyInodes.
type SizeError struct {
	Err         error
	NeedBytes   int64  // the smallest image size that holds the content
	HaveBytes   int64  // the size that was asked for
	NeedInodes  uint64 // the inodes the content needs
	HaveInodes  uint64 // the inodes that were asked for
	FirstFailed string // the first entry that did not fit (ErrNoSpace)
}

func (e *SizeError) Error() string {
	const mib = 1 << 20
	if errors.Is(e.Err, ErrTooManyInodes) {
		return fmt.Sprintf("ext4w: not enough inodes: the content needs at least %d, the image has %d", e.NeedInodes, e.HaveInodes)
	}
	return fmt.Sprintf("ext4w: no space left: the content needs at least %d MiB, the image has %d MiB (the first entry that did not fit: %s)",
		(e.NeedBytes+mib-1)/mib, e.HaveBytes/mib, e.FirstFailed)
}

func (e *SizeError) Unwrap() error { return e.Err }

// NotDirError says which existing entry of a path is not a directory. It
// matches ErrNotDir.
type NotDirError struct {
	Path     string   // the entry, relative to the root
	Type     FileType // what it is instead
	Linkname string   // its target, for a symlink
}

func (e *NotDirError) Error() string {
	what := e.Type.String()
	if e.Type == TypeSymlink {
		what = fmt.Sprintf("symlink (to %q)", e.Linkname)
	}
	return fmt.Sprintf("%q is a %s, not a directory, so nothing can go under it", e.Path, what)
}

// Is makes errors.Is(err, ErrNotDir) true.
func (e *NotDirError) Is(target error) bool { return target == ErrNotDir }
