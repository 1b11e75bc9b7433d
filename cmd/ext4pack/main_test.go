package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "67108864", want: 64 << 20},
		{in: "64M", want: 64 << 20},
		{in: "64MiB", want: 64 << 20},
		{in: "1.5G", want: 3 << 29},
		{in: "100MB", want: (100000000 + 4095) / 4096 * 4096},
		{in: "1GB", want: (1000000000 + 4095) / 4096 * 4096},
		{in: "1T", want: 1 << 40},
		{in: "5000", want: 8192},
		{in: "12Q", bad: true},
		{in: "-1G", bad: true},
		{in: "G", bad: true},
		{in: "17T", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSize(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("want an error, got %d", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestParseUUID(t *testing.T) {
	u, err := parseUUID("0637bf68-f42f-45ba-8b6d-2774eb7f8732")
	if err != nil || u[0] != 0x06 || u[15] != 0x32 {
		t.Fatalf("got %x, %v", u, err)
	}
	for _, bad := range []string{"", "0637bf68f42f45ba8b6d2774eb7f8732", "0637bf68-f42f-45ba-8b6d-2774eb7f873g"} {
		if _, err := parseUUID(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// runCLI runs the command line in-process and returns the exit code and
// both outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"ext4pack"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func smallTar(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	mt := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt})
	tw.WriteHeader(&tar.Header{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, ModTime: mt})
	tw.Write([]byte("vm\n"))
	tw.Close()
	p := filepath.Join(t.TempDir(), "in.tar")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodes(t *testing.T) {
	in := smallTar(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no command args", []string{"image"}, 2, "--rootfs-tar"},
		{"missing --out", []string{"image", "--rootfs-tar", in}, 2, "--out"},
		{"unknown flag", []string{"image", "--bogus"}, 2, "bogus"},
		{"bad size", []string{"image", "--rootfs-tar", in, "--out", filepath.Join(dir, "x"), "--size", "12Q"}, 2, "unit"},
		{"size below minimum", []string{"image", "--rootfs-tar", in, "--out", filepath.Join(dir, "x"), "--size", "1M"}, 2, "64 MiB"},
		{"long label", []string{"image", "--rootfs-tar", in, "--out", filepath.Join(dir, "x"), "--label", strings.Repeat("l", 17)}, 2, "16"},
		{"missing input", []string{"image", "--rootfs-tar", filepath.Join(dir, "nope.tar"), "--out", filepath.Join(dir, "x")}, 1, "nope.tar"},
		{"missing out dir", []string{"image", "--rootfs-tar", in, "--out", filepath.Join(dir, "no/such/dir/x")}, 1, "no/such/dir"},
		{"ok", []string{"image", "--rootfs-tar", in, "--out", filepath.Join(dir, "ok.img")}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if tc.code == 2 && stdout != "" {
				t.Errorf("a usage error printed on stdout: %q", stdout)
			}
			if !strings.Contains(stderr, tc.msg) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.msg)
			}
		})
	}
	// Nothing but the one good image may be left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "ok.img" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("output directory holds %v, want only ok.img", names)
	}
}

// TestHelpExamples: every command's --help shows an example, on stdout.
func TestHelpExamples(t *testing.T) {
	for _, cmd := range [][]string{{"--help"}, {"image", "--help"}, {"make-bundle", "--help"}, {"inspect", "--help"}, {"version", "--help"}} {
		code, stdout, _ := runCLI(t, cmd...)
		if code != 0 || !strings.Contains(stdout, "Example") || !strings.Contains(stdout, "ext4pack ") {
			t.Errorf("%v: exit %d, no example in:\n%s", cmd, code, stdout)
		}
	}
}

// TestVersion checks what `ext4pack version` prints in a build without the
// embedagents tag, as tests are; internal/disttest checks a `make dist`
// binary, guest binaries included.
func TestVersion(t *testing.T) {
	code, stdout, stderr := runCLI(t, "version")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	want := []string{
		"ext4pack " + ext4pack.Version,
		"commit: " + buildCommit(),
		"go: " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		"guest binaries: none embedded (build with `make build` or `make dist`)",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("version printed:\n%s\nwant:\n%s", stdout, strings.Join(want, "\n"))
	}
}
