package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/ocitest"
)

// TestSIGINTWithLayersAhead: SIGINT while a gzip layer inflates ahead into
// its spool beside the image (a file with no name, seen in /proc/PID/fd)
// exits 130 and leaves nothing: no image, no spool.
func TestSIGINTWithLayersAhead(t *testing.T) {
	bin := buildBinary(t)
	lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
	var layers []ocitest.Layer
	for i := range 4 {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		data := make([]byte, 24<<20)
		r := rand.New(rand.NewPCG(uint64(i), 3))
		for j := range data {
			data[j] = "spool \n"[r.IntN(7)] ^ byte(r.IntN(2)*r.IntN(256))
		}
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("big%d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
		tw.Close()
		layers = append(layers, ocitest.Layer{Tar: b.Bytes(), Compression: "gzip"})
	}
	lay.Tag("v1", lay.Image(ocitest.Image{Layers: layers}))
	lay.Close()

	out := t.TempDir()
	cmd := exec.Command(bin, "image", "--image", "oci:"+lay.Dir+":v1", "--out", filepath.Join(out, "rootfs.ext4"))
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2") // a layer ahead
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)
	spooling := func() bool {
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err == nil && strings.HasPrefix(target, filepath.Join(out, "ext4pack-spool-")) && strings.HasSuffix(target, "(deleted)") {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(60 * time.Second)
	for !spooling() {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no spool file was seen open beside the image: %s", stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v, want exit 130; stderr %s", err, stderr.String())
	}
	requireEmpty(t, out)
}
