package bundle

import "golang.org/x/sys/unix"

// physicalMemory is the machine's RAM in bytes, from sysinfo(2).
func physicalMemory() (int64, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, err
	}
	return int64(si.Totalram) * int64(si.Unit), nil
}
