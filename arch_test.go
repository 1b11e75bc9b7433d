package ext4pack

import (
	"runtime"
	"testing"

	"github.com/ext4pack/ext4pack/tarflat"
)

// TestPickArch covers the arch defaults and the contradiction check.
func TestPickArch(t *testing.T) {
	host, _ := NormalizeArch(runtime.GOARCH)
	for _, tc := range []struct {
		flag, tarArch, want string
		bad                 bool
	}{
		{"", "", host, false},
		{"", "x86_64", "x86_64", false},
		{"", "aarch64", "aarch64", false},
		{"x86_64", "", "x86_64", false},
		{"aarch64", "aarch64", "aarch64", false},
		{"x86_64", "aarch64", "", true},
		{"", "riscv64", "", true},
	} {
		info := tarflat.Info{Arch: tc.tarArch, ArchFrom: "/bin/sh"}
		got, err := pickArch(tc.flag, info)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("flag %q tar %q: got %q, %v", tc.flag, tc.tarArch, got, err)
		}
	}
}
