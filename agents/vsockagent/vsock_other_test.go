//go:build !linux || ext4pack_portable

package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// vsockStub says the agent was built with vsock_other.go, which cannot
// serve (ext4pack_portable runs it on Linux).
const vsockStub = true

// TestVsockStub: where there is no AF_VSOCK, the agent says so and exits
// 1, for --user too, rather than serve nothing.
func TestVsockStub(t *testing.T) {
	if _, err := listenVsock(defaultPort, t.Logf); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("listenVsock: %v, want errors.ErrUnsupported", err)
	}
	if err := dropPrivileges(65534, 65534); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("dropPrivileges: %v, want errors.ErrUnsupported", err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "AF_VSOCK needs Linux"},
		{[]string{"--user", "65534:65534"}, "--user needs Linux"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want 1 and %q", tc.args, code, stderr.String(), tc.msg)
		}
	}
}
