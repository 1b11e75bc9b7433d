package boottest

import (
	"os/exec"
	"syscall"
)

// isolate puts cmd in a process group of its own, so that a timeout kills
// everything it started (debootstrap runs dpkg in a chroot, go build runs
// the compiler) rather than leaving orphans that hold the scratch files.
func isolate(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// privateMounts runs cmd in a mount namespace of its own. debootstrap
// mounts /proc and /sys (and, inside a container, binds the host's /dev)
// under its target; if it is killed those mounts would stay, and removing
// the scratch directory would then reach into the host's /dev. In a private
// namespace they vanish with the last process. Go makes the new namespace's
// mounts private (MS_REC|MS_PRIVATE on /) before exec, so nothing
// propagates back.
func privateMounts(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Unshareflags |= syscall.CLONE_NEWNS
	return nil
}
