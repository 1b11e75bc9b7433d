package main

// robust_signal_test.go: SIGINT and SIGTERM at any point leave no output
// and no temporary file (SPEC "Output files"). signal_test.go covers
// image while the tar streams in; this adds make-bundle in each of its
// phases (the image, hashing it, compressing it), and a sweep that
// signals both commands after many delays across their whole run.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var sigCode = map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143}

// bundleArgs are make-bundle's arguments for the robust tests: no guest
// files (test binaries embed no agent), a fixed arch so that the host's
// does not matter.
func bundleArgsFor(in, out string) []string {
	return []string{"make-bundle", "--rootfs-tar", in, "--name", "robust", "--arch", "x86_64", "--no-agents", "--out", out}
}

// TestSignalsMakeBundle interrupts make-bundle while the tar streams
// into the image, as soon as the bundle's temporary file appears (the
// image is being hashed for the manifest), and once compressed data has
// reached it.
func TestSignalsMakeBundle(t *testing.T) {
	bin := buildBinary(t)
	in := dataTar(t, 32, 0)
	hasTemp := func(dir, prefix string, minSize int64) bool {
		for _, name := range dirEntries(t, dir) {
			if st, err := os.Stat(filepath.Join(dir, name)); err == nil && strings.HasPrefix(name, prefix) &&
				strings.Contains(name, ".tmp-") && st.Size() >= minSize {
				return true
			}
		}
		return false
	}
	for _, phase := range []struct {
		name  string
		stall bool // the tar arrives through a pipe that stalls
		ready func(dir string) bool
	}{
		{"while the tar streams in", true, func(dir string) bool { return hasTemp(dir, ".robust.rootfs.ext4", 1) }},
		{"while the image is hashed", false, func(dir string) bool { return hasTemp(dir, ".robust.tar.zst", 0) }},
		{"while the image is compressed", false, func(dir string) bool { return hasTemp(dir, ".robust.tar.zst", 1<<20) }},
	} {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(phase.name+"/"+sig.String(), func(t *testing.T) {
				outDir := t.TempDir()
				src := in
				if phase.stall {
					src = "-"
				}
				cmd := exec.Command(bin, bundleArgsFor(src, filepath.Join(outDir, "robust.tar.zst"))...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if phase.stall {
					// 16 MiB of the tar now, the rest never.
					data, err := os.ReadFile(in)
					if err != nil {
						t.Fatal(err)
					}
					stdin, err := cmd.StdinPipe()
					if err != nil {
						t.Fatal(err)
					}
					defer stdin.Close()
					go stdin.Write(data[:16<<20])
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer cmd.Process.Kill() // only if the test fails before the signal
				waitFor(t, phase.name, 30*time.Second, func() bool { return phase.ready(outDir) })
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				err := cmd.Wait()
				if code := exitOf(err); code != sigCode[sig] {
					t.Errorf("exit %d (%v), want %d; stderr: %s", code, err, sigCode[sig], stderr.String())
				}
				if !strings.Contains(stderr.String(), "interrupted") {
					t.Errorf("stderr does not say it was interrupted: %q", stderr.String())
				}
				requireEmpty(t, outDir)
			})
		}
	}
}

// TestSignalSweep signals image and make-bundle after delays spread over
// a whole run, from before ext4pack has set up its handler to after it
// has finished: each run must either succeed with exactly the bytes an
// undisturbed run writes, or end with 130/143 and leave nothing.
func TestSignalSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("many runs")
	}
	bin := buildBinary(t)
	in := dataTar(t, 16, 2000)
	for _, tc := range []struct {
		name string
		args func(out string) []string
	}{
		{"image", func(out string) []string { return []string{"image", "--rootfs-tar", in, "--out", out} }},
		{"make-bundle", func(out string) []string { return bundleArgsFor(in, out) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refDir := t.TempDir()
			ref := filepath.Join(refDir, "out")
			start := time.Now()
			if out, err := exec.Command(bin, tc.args(ref)...).CombinedOutput(); err != nil {
				t.Fatalf("the undisturbed run: %v\n%s", err, out)
			}
			took := time.Since(start)
			want, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			const runs = 8
			interrupted := 0
			for i := 0; i < runs; i++ {
				// From 0 to a little past the undisturbed run's length.
				delay := took * time.Duration(i) * 11 / 10 / (runs - 1)
				sig := []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}[i%2]
				outDir := t.TempDir()
				out := filepath.Join(outDir, "out")
				cmd := exec.Command(bin, tc.args(out)...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(delay)
				cmd.Process.Signal(sig) // fails harmlessly if it has exited
				code := exitOf(cmd.Wait())
				switch code {
				case 0:
					got, err := os.ReadFile(out)
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("%s after %v: exit 0, but the output differs from the undisturbed run's (%v)", sig, delay, err)
					}
					if names := dirEntries(t, outDir); len(names) != 1 {
						t.Errorf("%s after %v: exit 0 and %q in the output directory", sig, delay, names)
					}
				case sigCode[sig]:
					interrupted++
					requireEmpty(t, outDir)
				default:
					t.Errorf("%s after %v: exit %d; stderr: %s", sig, delay, code, stderr.String())
				}
			}
			t.Logf("undisturbed run %v; %d of %d runs interrupted", took.Round(time.Millisecond), interrupted, runs)
			if interrupted == 0 {
				t.Error("no run was interrupted: the sweep tested nothing")
			}
		})
	}
}

// TestSignalAfterCommitRemovesOutput: a signal that arrives after the
// output is renamed into place, while make-bundle prints its three lines
// (here held up by a full stdout pipe), still leaves no output: SPEC says
// an interrupt leaves none, and the handler says "no output written" and
// exits 143. The library removes only its temporary files; the handler
// removes the output the library renamed into place. The process cannot
// end otherwise: its print blocks until the signal, so any other exit, or
// a bundle left behind, fails.
func TestSignalAfterCommitRemovesOutput(t *testing.T) {
	bin := buildBinary(t)
	in := dataTar(t, 1, 10)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "robust.tar.zst")
	// A stdout pipe filled to the brim: the first line ext4pack prints
	// blocks, after the rename and before it exits. Raw descriptors:
	// an *os.File would wait for room instead of failing with EAGAIN.
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	pr, pw := os.NewFile(uintptr(fds[0]), "stdout-r"), os.NewFile(uintptr(fds[1]), "stdout-w")
	defer pr.Close()
	if err := syscall.SetNonblock(fds[1], true); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := syscall.Write(fds[1], make([]byte, 4096)); err != nil {
			break
		}
	}
	if err := syscall.SetNonblock(fds[1], false); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, bundleArgsFor(in, out)...)
	cmd.Stdout = pw
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	defer cmd.Process.Kill()
	waitFor(t, "the bundle to be renamed into place", 30*time.Second, func() bool {
		_, err := os.Stat(out)
		return err == nil
	})
	time.Sleep(50 * time.Millisecond) // into the blocked print
	cmd.Process.Signal(syscall.SIGTERM)
	code := exitOf(cmd.Wait())
	t.Logf("exit %d: %s", code, stderr.String())
	if code != 143 {
		t.Errorf("exit %d after SIGTERM, want 143", code)
	}
	requireEmpty(t, outDir)
}
