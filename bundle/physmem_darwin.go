package bundle

import "golang.org/x/sys/unix"

// physicalMemory is the machine's RAM in bytes, from sysctl hw.memsize.
func physicalMemory() (int64, error) {
	n, err := unix.SysctlUint64("hw.memsize")
	return int64(n), err
}
