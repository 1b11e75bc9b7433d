package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// TestSignals runs the real binary on a tar that arrives slowly through a
// pipe, interrupts it mid-way, and checks SPEC's exit code and that
// neither the output nor its temporary file is left.
func TestSignals(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		code int
	}{
		{"SIGINT", syscall.SIGINT, 130},
		{"SIGTERM", syscall.SIGTERM, 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outDir := t.TempDir()
			cmd := exec.Command(bin, "image", "--rootfs-tar", "-", "--out", filepath.Join(outDir, "rootfs.ext4"))
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill() // only if the test fails before the signal
			// The start of a tar: one 64 MiB file, of which 16 MiB come
			// now; the rest never does, as from a stalled producer.
			go func() {
				tw := tar.NewWriter(stdin)
				tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 64 << 20, ModTime: oracle.DefaultMtime})
				tw.Write(oracle.Content("big", 16<<20))
			}()
			// Mid-way: the temporary image exists and data has reached it.
			waitFor(t, "ext4pack to write data to its temporary file", 20*time.Second, func() bool {
				for _, name := range dirEntries(t, outDir) {
					if st, err := os.Stat(filepath.Join(outDir, name)); err == nil && strings.Contains(name, ".tmp-") && st.Size() > 0 {
						return true
					}
				}
				return false
			})
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			stdin.Close()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.code {
				t.Errorf("got %v, want exit code %d; stderr: %s", err, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("stderr does not say it was interrupted: %q", stderr.String())
			}
			requireEmpty(t, outDir)
		})
	}
}
