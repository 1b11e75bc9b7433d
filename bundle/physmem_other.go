//go:build !linux && !darwin && !windows

package bundle

import "errors"

// physicalMemory is not known here: the default budget is its floor.
func physicalMemory() (int64, error) {
	return 0, errors.New("no way to read the machine's memory on this system")
}
