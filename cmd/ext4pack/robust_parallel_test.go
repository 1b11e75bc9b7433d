package main

// robust_parallel_test.go: two runs at once on the same input give the
// same bytes (SPEC "Output files": same input and flags, byte-identical
// images and bundles on any machine and GOMAXPROCS). The runs share the
// input file and the machine, and differ in GOMAXPROCS.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

func TestParallelRunsIdentical(t *testing.T) {
	bin := buildBinary(t)
	in := dataTar(t, 8, 2000)
	for _, tc := range []struct {
		name string
		args func(out string) []string
	}{
		{"image", func(out string) []string { return []string{"image", "--rootfs-tar", in, "--out", out} }},
		{"make-bundle", func(out string) []string { return bundleArgsFor(in, out) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			outs := make([]string, 2)
			errs := make([]error, 2)
			msgs := make([][]byte, 2)
			for i := range outs {
				outs[i] = filepath.Join(t.TempDir(), "out")
				cmd := exec.Command(bin, tc.args(outs[i])...)
				// One run on one core, the other on all of them.
				cmd.Env = append(os.Environ(), []string{"GOMAXPROCS=1", "GOMAXPROCS=8"}[i])
				wg.Add(1)
				go func() {
					defer wg.Done()
					msgs[i], errs[i] = cmd.CombinedOutput()
				}()
			}
			wg.Wait()
			var data [2][]byte
			for i := range outs {
				if errs[i] != nil {
					t.Fatalf("run %d: %v\n%s", i, errs[i], msgs[i])
				}
				b, err := os.ReadFile(outs[i])
				if err != nil {
					t.Fatal(err)
				}
				data[i] = b
			}
			if !bytes.Equal(data[0], data[1]) {
				t.Errorf("two runs at once wrote different bytes (%d and %d bytes)", len(data[0]), len(data[1]))
			}
			if tc.name == "make-bundle" {
				// The paths differ; the sha256 and size lines may not.
				if a, b := bytes.SplitN(msgs[0], []byte("\n"), 2), bytes.SplitN(msgs[1], []byte("\n"), 2); len(a) < 2 || len(b) < 2 || !bytes.Equal(a[1], b[1]) {
					t.Errorf("make-bundle printed\n%s\nand\n%s", msgs[0], msgs[1])
				}
			}
		})
	}
}
