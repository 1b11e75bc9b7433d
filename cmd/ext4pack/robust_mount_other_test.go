//go:build !linux

package main

import "testing"

// mountTmpfs needs Linux; elsewhere the tests that fill a small disk or
// need a directory root cannot write to do not run.
func mountTmpfs(t *testing.T, dir, data string, readOnly bool) {
	t.Helper()
	skipOrFail(t, "mounting a tmpfs needs Linux")
}
