//go:build !linux

package oracle

import (
	"errors"
	"testing"
)

// errNotLinux is returned by the judges that need the Linux kernel.
var errNotLinux = errors.New("oracle: mounting an ext4 image needs Linux")

// CompareMount needs Linux; elsewhere it skips t, or fails it when CI is set.
func CompareMount(t testing.TB, tarPath, image string, opts ...CompareOption) {
	t.Helper()
	skipOrFail(t, errNotLinux.Error())
}

// MountDiff needs Linux; elsewhere it returns an error.
func MountDiff(tarPath, image string, opts ...CompareOption) ([]Difference, error) {
	return nil, errNotLinux
}

// DirDiff reads xattrs and device numbers the Linux way; elsewhere it
// returns an error.
func DirDiff(tarPath, dir string, opts ...CompareOption) ([]Difference, error) {
	return nil, errors.New("oracle: DirDiff needs Linux")
}

// CompareMountWithDir needs Linux; elsewhere it skips t, or fails it when
// CI is set.
func CompareMountWithDir(t testing.TB, want, image string, opts ...CompareOption) {
	t.Helper()
	skipOrFail(t, errNotLinux.Error())
}

// MountDiffDir needs Linux; elsewhere it returns an error.
func MountDiffDir(want, image string, opts ...CompareOption) ([]Difference, error) {
	return nil, errNotLinux
}
