package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTool(t *testing.T) {
	dir := t.TempDir()
	cmdline := filepath.Join(dir, "cmdline")
	if err := os.WriteFile(cmdline, []byte("console=ttyS0 root=/dev/vda ip=dhcp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("ip=10.0.0.300::::::\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	none := filepath.Join(dir, "none")
	if err := os.WriteFile(none, []byte("quiet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		output string
	}{
		{nil, 2, "not PID 1"},
		{[]string{"version"}, 0, "ext4pack-init dev"},
		{[]string{"help"}, 0, "usage:"},
		{[]string{"frobnicate"}, 2, "unknown subcommand"},
		{[]string{"network", "--cmdline"}, 2, "bad arguments"},
		{[]string{"network", "--port", "1"}, 2, "bad arguments"},
		{[]string{"network", "--cmdline", filepath.Join(dir, "missing")}, 1, "no such file"},
		{[]string{"network", "--cmdline", cmdline}, 0, "nothing to do"},
		{[]string{"network", "--cmdline", none, "--sys", dir}, 0, "no ip="},
		{[]string{"network", "--cmdline", bad}, 1, "not an IPv4 address"},
		{[]string{"grow", "/", "/"}, 2, "bad arguments"},
		{[]string{"grow", "--dir"}, 2, "bad arguments"},
		{[]string{"grow", filepath.Join(dir, "missing")}, 1, "ext4pack-init: grow: statfs"},
		// Not ext4: nothing to grow, nothing said.
		{[]string{"grow", "/proc"}, 0, ""},
	} {
		var stdout, stderr bytes.Buffer
		code := tool(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.output) {
			t.Errorf("%q: exit %d (want %d), output %q (want %q)", tc.args, code, tc.code, stdout.String()+stderr.String(), tc.output)
		}
	}
}
