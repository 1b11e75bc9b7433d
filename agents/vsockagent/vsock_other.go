// ext4pack_portable gives Linux this file too, so that its tests run the
// stub every other system builds (make test).

//go:build !linux || ext4pack_portable

package main

import (
	"errors"
	"fmt"
	"net"
)

// listenVsock exists so that the module builds and vets on every GOOS; the
// agent itself only runs in Linux guests.
func listenVsock(uint32, func(string, ...any)) (net.Listener, error) {
	return nil, fmt.Errorf("AF_VSOCK needs Linux: %w", errors.ErrUnsupported)
}

func dropPrivileges(int, int) error {
	return fmt.Errorf("--user needs Linux: %w", errors.ErrUnsupported)
}
