//go:build !linux

package boottest

import (
	"errors"
	"os/exec"
)

// isolate does nothing here: exec.CommandContext kills the process itself,
// which is all that can be done portably.
func isolate(*exec.Cmd) {}

// privateMounts fails: mount namespaces are Linux's, and debootstrap, the
// only command that needs one, runs only on Linux.
func privateMounts(*exec.Cmd) error {
	return errors.New("a private mount namespace needs Linux")
}
