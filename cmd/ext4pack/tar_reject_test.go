package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// TestImageRejects feeds ext4pack image one malformed tar per case, from
// a file and from standard input: each must exit 1 with a message saying
// what is wrong and with which entry, and leave no file behind.
func TestImageRejects(t *testing.T) {
	good := tartest.Bytes(t,
		tartest.Dir("etc/", 0o755),
		tartest.File("etc/big", 0o644, oracle.Content("big", 5000)),
		tartest.File("etc/next", 0o644, "next"),
	)
	// etc/next's header starts after etc/ (512), etc/big's header (512)
	// and its data (5000 bytes, padded to 5120).
	const nextAt = 512 + 512 + 5120
	badSum := bytes.Clone(good)
	badSum[nextAt+5] ^= 0x20
	random := oracle.Content("random", 8192)
	gz := oracle.Gzip(t, good)
	// one is a tar of a good directory and then e.
	one := func(e tartest.Entry) []byte { return tartest.Bytes(t, tartest.Dir("ok", 0o755), e) }
	for _, tc := range []struct {
		name string
		in   []byte
		want []string // each must be in the message
	}{
		{"truncated tar", good[:1024+3000], []string{`tar entry "etc/big" (at byte 512)`, "ends in the middle of the entry's data", "truncated"}},
		{"bad checksum", badSum, []string{"tar header at byte 6144", "bad header checksum", `the entry before it is "etc/big"`}},
		{"random bytes", random, []string{"tar header at byte 0", "not a tar archive"}},
		{"empty", nil, []string{"the input is empty"}},
		{"no end-of-archive marker", good[:nextAt], []string{"without tar's end-of-archive marker", `after entry "etc/big"`}},
		{"gzip truncated", gz[:len(gz)-40], []string{"the gzip stream is truncated"}},
		{"zstd garbage", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, random...), []string{"the zstd stream is corrupt"}},
		{"xz", []byte("\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46"), []string{"xz-compressed", "plain, gzip and zstd"}},
		{"dotdot escape", one(tartest.File("../../etc/passwd", 0o644, "x")),
			[]string{`tar entry "../../etc/passwd" (at byte 512)`, `climbs out of the root with ".."`}},
		{"hardlink to a later entry", tartest.Bytes(t, tartest.Hardlink("bin/sh", "bin/dash"), tartest.File("bin/dash", 0o755, "dash")),
			[]string{`tar entry "bin/sh" (at byte 0)`, `hardlink to "bin/dash", which no earlier entry made`}},
		{"entry under a file", tartest.Bytes(t, tartest.File("etc/passwd", 0o644, "root"), tartest.File("etc/passwd/oops", 0o644, "x")),
			[]string{`tar entry "etc/passwd/oops" (at byte 1024)`, `"etc/passwd" is a regular file, not a directory`}},
		{"256-byte component", one(tartest.File("d/"+strings.Repeat("n", 256), 0o644, "").In(tar.FormatPAX)),
			[]string{`(at byte 512)`, "a name component is 256 bytes, the limit is 255"}},
		{"4096-byte symlink target", one(tartest.Symlink("l", strings.Repeat("t", 4096)).In(tar.FormatPAX)),
			[]string{`tar entry "l" (at byte 512)`, "symlink target is 4096 bytes, the limit is 4095"}},
		{"unknown typeflag", tartest.Bytes(t, tartest.Dir("ok", 0o755), tartest.Dir("ok2", 0o644), tartest.Entry{Header: tar.Header{Name: "weird", Typeflag: 'Q', Mode: 0o644}}),
			[]string{`tar entry "weird" (at byte 1024)`, "unknown entry type 'Q'"}},
		{"device major 4096", one(tartest.Block("dev/big", 0o644, 4096, 1)),
			[]string{`tar entry "dev/big" (at byte 512)`, "device 4096:1 is beyond what ext4 holds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachInput(t, func(t *testing.T, stdin bool) {
				outDir := t.TempDir()
				out := filepath.Join(outDir, "rootfs.ext4")
				var code int
				var stderr string
				if stdin {
					code, _, stderr, _, _ = runCLIStdin(t, bytes.NewReader(tc.in), "image", "--rootfs-tar", "-", "--out", out)
				} else {
					in := writeTemp(t, "bad.tar", tc.in)
					code, _, stderr = runCLI(t, "image", "--rootfs-tar", in, "--out", out)
				}
				t.Log(strings.TrimSpace(stderr))
				if code != 1 {
					t.Errorf("exit %d, want 1", code)
				}
				for _, w := range tc.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("the message does not say %q", w)
					}
				}
				if stdin && !strings.Contains(stderr, "standard input") {
					t.Errorf("the message does not name standard input")
				}
				requireEmpty(t, outDir)
			})
		})
	}
}

// TestImageDevNull: /dev/null on standard input is an empty input, not
// mistaken for a terminal.
func TestImageDevNull(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	old := os.Stdin
	os.Stdin = null
	defer func() { os.Stdin = old }()
	outDir := t.TempDir()
	code, _, stderr := runCLI(t, "image", "--rootfs-tar", "-", "--out", filepath.Join(outDir, "img"))
	if code != 1 || !strings.Contains(stderr, "standard input: the input is empty") {
		t.Errorf("exit %d, %q; want 1 and an empty input", code, stderr)
	}
	requireEmpty(t, outDir)
}
