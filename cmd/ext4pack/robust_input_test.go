package main

// robust_input_test.go: inputs that cannot be read, outputs that cannot
// be written, and inputs that end early over a pipe. Each must give one
// clear line on stderr, exit 1, and leave nothing behind (SPEC "CLI",
// "Output files").

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// bothCommands runs f for image and for make-bundle --no-agents, with
// args that write to out.
func bothCommands(t *testing.T, f func(t *testing.T, args func(in, out string) []string)) {
	t.Run("image", func(t *testing.T) {
		f(t, func(in, out string) []string { return []string{"image", "--rootfs-tar", in, "--out", out} })
	})
	t.Run("make-bundle", func(t *testing.T) { f(t, bundleArgsFor) })
}

// TestUnreadableInput: an input that exists but cannot be read. A FIFO
// with no writer is not among them: opening it waits for a writer, as
// cat does, which is right for a producer that starts late.
func TestUnreadableInput(t *testing.T) {
	dir := t.TempDir()
	dangling := filepath.Join(dir, "dangling.tar")
	if err := os.Symlink(filepath.Join(dir, "gone"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in string
		want     []string
		linux    bool
	}{
		{"a directory", dir, []string{dir, "is a directory"}, false},
		{"a dangling symlink", dangling, []string{dangling, "no such file or directory"}, false},
		// Reading address 0 of one's own memory fails with EIO: a read
		// error from a file that opened fine.
		{"a read error (EIO)", "/proc/self/mem", []string{"/proc/self/mem", "input/output error"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.linux && runtime.GOOS != "linux" {
				t.Skip("/proc/self/mem is Linux's")
			}
			bothCommands(t, func(t *testing.T, args func(in, out string) []string) {
				outDir := t.TempDir()
				code, _, stderr := runCLI(t, args(tc.in, filepath.Join(outDir, "out"))...)
				t.Log(strings.TrimSpace(stderr))
				oneLine(t, code, stderr, tc.want...)
				requireEmpty(t, outDir)
			})
		})
	}
	t.Run("standard input is a directory", func(t *testing.T) {
		bin := buildBinary(t)
		bothCommands(t, func(t *testing.T, args func(in, out string) []string) {
			outDir := t.TempDir()
			d, err := os.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			cmd := exec.Command(bin, args("-", filepath.Join(outDir, "out"))...)
			cmd.Stdin = d
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			code := exitOf(cmd.Run())
			t.Log(strings.TrimSpace(stderr.String()))
			oneLine(t, code, stderr.String(), "standard input", "is a directory")
			requireEmpty(t, outDir)
		})
	})
	t.Run("permission denied", func(t *testing.T) {
		in := tartest.Write(t, tartest.File("f", 0o644, "x"))
		if err := os.Chmod(in, 0); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() != 0 {
			bothCommands(t, func(t *testing.T, args func(in, out string) []string) {
				outDir := t.TempDir()
				code, _, stderr := runCLI(t, args(in, filepath.Join(outDir, "out"))...)
				oneLine(t, code, stderr, in, "permission denied")
				requireEmpty(t, outDir)
			})
			return
		}
		// Root reads a mode-000 file: run ext4pack as nobody instead,
		// with the binary and the output where nobody can reach them.
		bin := buildBinary(t)
		bothCommands(t, func(t *testing.T, args func(in, out string) []string) {
			outDir := t.TempDir()
			for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin)), filepath.Dir(outDir), filepath.Dir(in), filepath.Dir(filepath.Dir(in))} {
				os.Chmod(d, 0o755)
			}
			os.Chmod(outDir, 0o777)
			cmd := exec.Command(bin, args(in, filepath.Join(outDir, "out"))...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			cmd.Dir = outDir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				skipOrFail(t, "running ext4pack as nobody: "+err.Error()+" (a container without CAP_SETUID?)")
			}
			code := exitOf(cmd.Wait())
			t.Log(strings.TrimSpace(stderr.String()))
			oneLine(t, code, stderr.String(), in, "permission denied")
			requireEmpty(t, outDir)
		})
	})
}

// TestUnwritableOutput: an output directory that does not exist, a
// path through a regular file, and a read-only directory.
func TestUnwritableOutput(t *testing.T) {
	in := smallTar(t)
	base := t.TempDir()
	file := filepath.Join(base, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, out string
		want      []string
	}{
		{"missing directory", filepath.Join(base, "no", "such", "dir", "out"), []string{filepath.Join(base, "no", "such", "dir"), "no such file or directory"}},
		{"a file in the path", filepath.Join(file, "out"), []string{file, "not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothCommands(t, func(t *testing.T, args func(in, out string) []string) {
				code, _, stderr := runCLI(t, args(in, tc.out)...)
				t.Log(strings.TrimSpace(stderr))
				oneLine(t, code, stderr, tc.want...)
			})
		})
	}
	t.Run("read-only directory", func(t *testing.T) {
		ro := t.TempDir()
		if os.Geteuid() == 0 {
			// chmod 555 does not stop root: a read-only tmpfs does.
			mountTmpfs(t, ro, "size=1m", true)
		} else if err := os.Chmod(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		bothCommands(t, func(t *testing.T, args func(in, out string) []string) {
			code, _, stderr := runCLI(t, args(in, filepath.Join(ro, "out"))...)
			t.Log(strings.TrimSpace(stderr))
			want := "read-only file system"
			if os.Geteuid() != 0 {
				want = "permission denied"
			}
			oneLine(t, code, stderr, ro, want)
			requireEmpty(t, ro)
		})
	})
}

// TestBundleDiskFull fills the disk while make-bundle compresses: the
// image fits a small tmpfs, the bundle beside it does not. (The image's
// own full disk is tar_diskfull_linux_test.go's.)
func TestBundleDiskFull(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("tmpfs is Linux's")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "mounting a small tmpfs to fill needs root")
	}
	mnt := t.TempDir()
	mountTmpfs(t, mnt, "size=40m,mode=0755", false)
	// 24 MiB of incompressible data: the image takes about 25 MiB of
	// the 40, and its compressed copy does not fit in the rest.
	in := dataTar(t, 24, 0)
	out := filepath.Join(mnt, "robust.tar.zst")
	code, _, stderr := runCLI(t, bundleArgsFor(in, out)...)
	t.Log(strings.TrimSpace(stderr))
	oneLine(t, code, stderr, out, "no space left on device")
	requireEmpty(t, mnt)
}

// TestInputEndsEarly cuts a tar short at every kind of place and pipes
// it in, plain, gzip and zstd: each is an error, never a partial image.
func TestInputEndsEarly(t *testing.T) {
	full := tartest.Bytes(t,
		tartest.Dir("etc/", 0o755),
		tartest.File("etc/data", 0o644, oracle.Content("data", 3000)),
		tartest.File("etc/last", 0o644, "last"),
	)
	// etc/ is at 0, etc/data's header at 512 and its data at 1024 (3000
	// bytes, padded to 3072), etc/last's header at 4096, its data at
	// 4608, the end-of-archive marker at 5120.
	cuts := []struct {
		name string
		at   int
	}{
		{"in the first header", 100},
		{"after the first header", 512},
		{"in a header", 700},
		{"in the data", 2000},
		{"at the end of the data, before its padding", 1024 + 3000},
		{"after an entry, without the end-of-archive marker", 5120},
	}
	var cases []struct {
		name string
		in   []byte
	}
	for _, c := range cuts {
		cases = append(cases, struct {
			name string
			in   []byte
		}{"plain/" + c.name, full[:c.at]})
	}
	gz, zs := oracle.Gzip(t, full), oracle.Zstd(t, full)
	cases = append(cases,
		struct {
			name string
			in   []byte
		}{"gzip/in the stream", gz[:len(gz)/2]},
		struct {
			name string
			in   []byte
		}{"gzip/without its trailer", gz[:len(gz)-8]},
		struct {
			name string
			in   []byte
		}{"zstd/in the stream", zs[:len(zs)/2]},
		struct {
			name string
			in   []byte
		}{"zstd/without its last bytes", zs[:len(zs)-4]},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bothCommands(t, func(t *testing.T, args func(in, out string) []string) {
				outDir := t.TempDir()
				code, stdout, stderr, _, _ := runCLIStdin(t, bytes.NewReader(tc.in), args("-", filepath.Join(outDir, "out"))...)
				t.Log(strings.TrimSpace(stderr))
				oneLine(t, code, stderr, "standard input")
				if stdout != "" {
					t.Errorf("stdout %q after a failure", stdout)
				}
				requireEmpty(t, outDir)
			})
		})
	}
}
