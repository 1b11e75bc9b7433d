package tarflat

import (
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "./", want: "."},
		{in: ".", want: "."},
		{in: "/", want: "."},
		{in: "./etc/", want: "etc"},
		{in: "/etc/passwd", want: "etc/passwd"},
		{in: "etc//passwd", want: "etc/passwd"},
		{in: "usr/./bin", want: "usr/bin"},
		{in: "../etc", bad: true},
		{in: "etc/../../x", bad: true},
		{in: "a/b/..", want: "a"},
		{in: "a/../b", want: "b"},
		{in: "/../etc", bad: true},
		{in: "", want: "."},
		{in: strings.Repeat("n", 255), want: strings.Repeat("n", 255)},
		{in: strings.Repeat("n", 256), bad: true},
		{in: "a\x00b", bad: true},
		{in: "a/" + strings.Repeat("n", 256) + "/../b", want: "a/b"}, // the long component is gone once cleaned
		{in: "./a/./b/", want: "a/b"},
		{in: "//a//b//", want: "a/b"},
		{in: "a/..", want: "."},
		{in: "..", bad: true},
		{in: "../", bad: true},
		{in: "a/../..", bad: true},
		{in: "..a/b", want: "..a/b"}, // a name that starts with dots is not ".."
		{in: "a/..b", want: "a/..b"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Clean(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("want an error, got %q", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
