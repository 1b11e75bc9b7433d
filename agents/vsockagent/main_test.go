package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/agents"
)

// The unit passes --port explicitly, but someone running the agent by hand
// gets its default, and the documentation promises one value for both.
func TestDefaultPortMatchesAgents(t *testing.T) {
	if defaultPort != agents.DefaultVsockPort {
		t.Errorf("defaultPort = %d, agents.DefaultVsockPort = %d", defaultPort, agents.DefaultVsockPort)
	}
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderrHas  string
		stderrNone bool
	}{
		{name: "version", args: []string{"--version"}, code: 0, stdout: "banger-vsock-agent dev\n", stderrNone: true},
		{name: "single dash version", args: []string{"-version"}, code: 0, stdout: "banger-vsock-agent dev\n"},
		{name: "help", args: []string{"--help"}, code: 0, stderrHas: "(default 1024)"},
		{name: "port zero", args: []string{"--port=0"}, code: 2, stderrHas: "out of range"},
		{name: "port any", args: []string{"--port", "4294967295"}, code: 2, stderrHas: "out of range"},
		{name: "port not a number", args: []string{"--port=ssh"}, code: 2, stderrHas: "invalid value"},
		{name: "unknown flag", args: []string{"--exec=/bin/sh"}, code: 2, stderrHas: "flag provided but not defined"},
		{name: "argument", args: []string{"serve"}, code: 2, stderrHas: `unexpected argument "serve"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if stdout.String() != tc.stdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.stdout)
			}
			if !strings.Contains(stderr.String(), tc.stderrHas) || (tc.stderrNone && stderr.Len() > 0) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.stderrHas)
			}
		})
	}
}

// TestRunStops checks that an agent told to stop exits 0 whether it got to
// listen or is still waiting for a vsock transport.
func TestRunStops(t *testing.T) {
	if vsockStub {
		t.Skip("the agent serves only on Linux; TestVsockStub covers the stub")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"--port=3141592653"}, &stdout, &stderr); code != 0 {
		t.Errorf("exit %d, want 0; stderr %q", code, stderr.String())
	}
}

func TestParseUser(t *testing.T) {
	for _, tc := range []struct {
		in       string
		uid, gid int
		bad      bool
	}{
		{"65534:65534", 65534, 65534, false},
		{"0:0", 0, 0, false},
		{"1000:100", 1000, 100, false},
		{"4294967294:1", 4294967294, 1, false},
		{"4294967295:1", 0, 0, true}, // (uid_t)-1 means "no change"
		{"nobody:nogroup", 0, 0, true},
		{"65534", 0, 0, true},
		{":65534", 0, 0, true},
		{"-1:0", 0, 0, true},
		{"", 0, 0, true},
	} {
		uid, gid, err := parseUser(tc.in)
		if (err != nil) != tc.bad || uid != tc.uid || gid != tc.gid {
			t.Errorf("%q: %d %d %v", tc.in, uid, gid, err)
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--user", "nobody"}, io.Discard, &stderr); code != 2 {
		t.Errorf("--user nobody: exit %d, %s", code, stderr.String())
	}
}
