package main

import (
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Where PID 1's lines go. The kernel starts init with /dev/console on
// descriptors 0, 1 and 2; when it cannot open it (console= names a device
// that does not exist, or an initramfs has no /dev/console), they are closed,
// and the Go runtime opens /dev/null on them before main runs. PID 1 then
// tries /dev/console again once /dev is mounted, and failing that writes its
// lines to the kernel's log (/dev/kmsg), where dmesg and any later console
// find them. Lines written before /dev is mounted wait in memory.
type logMode uint8

const (
	logStderr  logMode = iota // the console is on standard error
	logPending                // no console yet: lines wait for settle
	logKmsg                   // no console: the kernel's log
)

// maxPending bounds the lines kept before settle: a boot logs a dozen.
const maxPending = 256

// consoleLog writes PID 1's lines where they can be read.
type consoleLog struct {
	mu      sync.Mutex
	mode    logMode
	pending []string
	stderr  io.Writer
	kmsg    string // the kernel log device, /dev/kmsg
}

func newConsoleLog(console bool, stderr io.Writer, kmsg string) *consoleLog {
	c := &consoleLog{stderr: stderr, kmsg: kmsg}
	if !console {
		c.mode = logPending
	}
	return c
}

// line writes one line (which may hold newlines: a panic's stack).
func (c *consoleLog) line(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.mode {
	case logStderr:
		// If writing fails there is no one left to tell.
		io.WriteString(c.stderr, s+"\n")
	case logPending:
		if len(c.pending) < maxPending {
			c.pending = append(c.pending, s)
		}
	case logKmsg:
		c.writeKmsg(s)
	}
}

// settle decides, once /dev is mounted, where the lines go: the console if
// reopen gets it onto descriptors 0-2 now, else the kernel's log. What
// waited is written there. It returns the mode chosen.
func (c *consoleLog) settle(reopen func() error) logMode {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mode != logPending {
		return c.mode
	}
	if reopen() == nil {
		c.mode = logStderr
		for _, s := range c.pending {
			io.WriteString(c.stderr, s+"\n")
		}
	} else {
		c.mode = logKmsg
		for _, s := range c.pending {
			c.writeKmsg(s)
		}
	}
	c.pending = nil
	return c.mode
}

// writeKmsg writes s to the kernel's log, one record a line, at the info
// level ("<6>"). The device is opened for each line: the kernel limits how
// many lines one open file may write in a burst (ten every five seconds),
// and a boot's first lines come faster than that. A failed write is lost:
// there is nowhere else.
func (c *consoleLog) writeKmsg(s string) {
	for _, l := range strings.Split(s, "\n") {
		fd, err := unix.Open(c.kmsg, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != nil {
			return
		}
		unix.Write(fd, []byte("<6>"+l+"\n"))
		unix.Close(fd)
	}
}

// hasConsole reports whether descriptor fd is a console worth writing to:
// anything but /dev/null (character device 1:3), which is what the Go
// runtime put there if the kernel left it closed.
func hasConsole(fd int) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	return !(st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3)
}

// reopenConsole opens path (/dev/console) and puts it on descriptors 0, 1
// and 2, as the kernel would have.
func reopenConsole(path string) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("open "+path, err)
	}
	defer unix.Close(fd)
	for target := 0; target < 3; target++ {
		// dup3 without O_CLOEXEC: children inherit 0-2.
		if err := unix.Dup3(fd, target, 0); err != nil {
			return os.NewSyscallError("dup3", err)
		}
	}
	return nil
}
