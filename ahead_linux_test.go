package ext4pack_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack"
	"github.com/ext4pack/ext4pack/internal/ocitest"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// aheadLayout writes an image of five gzip layers of 6 MiB each, more
// than a spool holds in memory, whose later layers replace and remove
// what earlier ones wrote; bad, when not negative, makes that layer's
// gzip stream corrupt (its CRC).
func aheadLayout(t *testing.T, bad int) string {
	lay := ocitest.NewLayout(t, filepath.Join(t.TempDir(), "layout"))
	var layers []ocitest.Layer
	for i := range 5 {
		b := oracle.NewTar(t)
		b.Dir("d", 0o755)
		r := rand.New(rand.NewPCG(uint64(i), 7))
		data := make([]byte, 6<<20)
		for j := range data {
			data[j] = "ext4 layer \n"[r.IntN(12)] ^ byte(r.IntN(2)*r.IntN(256))
		}
		b.File(fmt.Sprintf("d/big%d", i), 0o644, data)
		b.File("d/same", 0o644, []byte(fmt.Sprintf("from layer %d", i)))
		if i > 0 {
			b.File(fmt.Sprintf("d/.wh.big%d", i-1), 0o644, nil)
		}
		l := ocitest.Layer{Tar: b.Bytes(), Compression: "gzip"}
		if i == bad {
			gz := oracle.Gzip(t, l.Tar)
			gz[len(gz)-6] ^= 1
			l = ocitest.Layer{Tar: gz, MediaType: ocitest.MediaTarGzip}
		}
		layers = append(layers, l)
	}
	lay.Tag("v1", lay.Image(ocitest.Image{Layers: layers}))
	lay.Close()
	return "oci:" + lay.Dir + ":v1"
}

// TestLayersAheadSameBytes: the image is the same, byte for byte, with
// no layer inflated ahead (GOMAXPROCS 1) and one (2 and 4), spilling
// past its spool's memory.
func TestLayersAheadSameBytes(t *testing.T) {
	ref := aheadLayout(t, -1)
	var first string
	for _, procs := range []int{1, 2, 4} {
		func() {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			img := filepath.Join(t.TempDir(), "rootfs.ext4")
			if _, err := ext4pack.BuildImage(context.Background(), ext4pack.Source{Image: ref}, img, ext4pack.Options{}); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			sum := fmt.Sprintf("%x", sha256.Sum256(data))
			t.Logf("GOMAXPROCS %d: sha256 %s", procs, sum)
			if first == "" {
				first = sum
				oracle.Fsck(t, img)
			} else if sum != first {
				t.Errorf("GOMAXPROCS %d: image sha256 %s, at GOMAXPROCS 1 %s", procs, sum, first)
			}
		}()
	}
}

// TestLayersAheadCleanup: when a build stops, on a corrupt layer or
// cancelled, the layers inflating ahead are stopped and their spools,
// beside the image, are gone: nothing is left in the directory, and no
// file of it is still open, deleted or not.
func TestLayersAheadCleanup(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4)) // a layer ahead
	for _, tc := range []struct {
		name   string
		bad    int  // the corrupt layer
		cancel bool // cancel when layer 2 is built
		want   string
	}{
		{name: "corrupt layer 3", bad: 2, want: "layer 3 of 5"},
		{name: "cancelled at layer 2", bad: -1, cancel: true, want: "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := aheadLayout(t, tc.bad)
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var o ext4pack.Options
			spilled := false
			o.Progress = func(p ext4pack.Progress) {
				if strings.HasPrefix(p.Stage, "layer 2 of") && !spilled {
					// Layer 3 inflates ahead meanwhile, into a spool
					// beside the image: wait (holding up the build) until
					// it goes past its memory, into a file.
					for deadline := time.Now().Add(20 * time.Second); !spilled && time.Now().Before(deadline); {
						spilled = len(openIn(t, dir)) > 1
						time.Sleep(5 * time.Millisecond)
					}
					if tc.cancel {
						cancel()
					}
				}
			}
			_, err := ext4pack.BuildImage(ctx, ext4pack.Source{Image: ref}, filepath.Join(dir, "rootfs.ext4"), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) && !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if !spilled {
				t.Error("no spool file was seen open beside the image while layer 2 was built")
			}
			if es, _ := os.ReadDir(dir); len(es) != 0 {
				t.Errorf("left in the directory: %v", es)
			}
			if open := openIn(t, dir); len(open) != 0 {
				t.Errorf("still open: %q", open)
			}
		})
	}
}

// openIn lists this process's open files in dir, deleted ones too.
func openIn(t *testing.T, dir string) []string {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			open = append(open, target)
		}
	}
	return open
}
