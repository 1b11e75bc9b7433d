package tarflat

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// noise is n bytes that gzip cannot shrink much.
func noise(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 9))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readVia reads every entry of in as readAll does, through a Reader made
// by mk.
func readVia(in []byte, mk func(io.Reader) io.Reader) (out []string, warns []string, err error) {
	r := NewReader(mk(bytes.NewReader(in)), WithWarn(func(m string) { warns = append(warns, m) }))
	defer r.Close()
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out, warns, nil
		}
		if err != nil {
			return out, warns, err
		}
		d, err := io.ReadAll(r)
		if err != nil {
			return out, warns, err
		}
		out = append(out, fmt.Sprintf("%s %d %x", e.Name, len(d), d[:min(len(d), 16)]))
	}
}

// TestPrefetchSame: a stream inflated ahead (Prefetch, and NewReader's
// own for gzip) reads as the stream read on one goroutine: the same
// entries and bytes, warnings and errors, for
// plain, gzip (one member, several, trailing garbage, corrupt, cut) and
// zstd tars.
func TestPrefetchSame(t *testing.T) {
	tarb := tartest.Bytes(t, dir("etc"), file("etc/a", 0o644, noise(300000, 1)), file("etc/b", 0o600, []byte("bee")))
	gz := oracle.Gzip(t, tarb)
	badCRC := append([]byte{}, gz...)
	badCRC[len(badCRC)-6] ^= 1
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(tarb)
	zw.Close()
	half := len(tarb) / 2
	cases := map[string][]byte{
		"plain":            tarb,
		"gzip":             gz,
		"gzip two members": join(oracle.Gzip(t, tarb[:half]), oracle.Gzip(t, tarb[half:])),
		"gzip then junk":   join(gz, []byte("junk")),
		"gzip bad crc":     badCRC,
		"gzip cut":         gz[:len(gz)/2],
		"zstd":             zs.Bytes(),
		"empty":            nil,
		"not a tar":        []byte(strings.Repeat("x", 2000)),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			inflateAhead = false
			want, wantWarns, wantErr := readVia(in, func(r io.Reader) io.Reader { return r })
			inflateAhead = true
			got, gotWarns, gotErr := readVia(in, func(r io.Reader) io.Reader { return Prefetch(r, t.TempDir()) })
			if fmt.Sprint(got, gotWarns, gotErr) != fmt.Sprint(want, wantWarns, wantErr) {
				t.Errorf("prefetched: %v %q %v\nread on one goroutine: %v %q %v", got, gotWarns, gotErr, want, wantWarns, wantErr)
			}
			// NewReader's own gzip inflating ahead too.
			got, gotWarns, gotErr = readVia(in, func(r io.Reader) io.Reader { return r })
			if fmt.Sprint(got, gotWarns, gotErr) != fmt.Sprint(want, wantWarns, wantErr) {
				t.Errorf("inflated ahead: %v %q %v\nread on one goroutine: %v %q %v", got, gotWarns, gotErr, want, wantWarns, wantErr)
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

// TestPrefetchSpool: a layer that decompresses to more than the spool's
// memory goes on to a file in the directory given, which has no name
// there, and is gone when the Reader is closed: after the whole layer
// was read, after a corrupt layer's error, and when the layer is never
// read (a build that stopped, cancelled, before its turn).
func TestPrefetchSpool(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/fd")
	}
	big := tartest.Bytes(t, file("big", 0o644, noise(3*aheadMemory, 2)))
	gz := oracle.Gzip(t, big)
	corrupt := append([]byte{}, gz...)
	corrupt[len(corrupt)-6] ^= 1
	for _, tc := range []struct {
		name    string
		in      []byte
		read    bool
		wantErr string
	}{
		{"read whole", gz, true, ""},
		{"corrupt", corrupt, true, "checksum mismatch"},
		{"never read", gz, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			p := Prefetch(bytes.NewReader(tc.in), d)
			deadline := time.Now().Add(30 * time.Second)
			for p.sp.Spilled() < int64(len(big))-aheadMemory {
				if time.Now().After(deadline) {
					t.Fatalf("%d bytes spilled of %d, %d MiB held in memory", p.sp.Spilled(), len(big), aheadMemory>>20)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if open := openIn(t, d); len(open) != 1 || !strings.HasSuffix(open[0], "(deleted)") {
				t.Fatalf("open in the spool's directory: %q, want one file, deleted", open)
			}
			if es, _ := os.ReadDir(d); len(es) != 0 {
				t.Fatalf("%d names in the spool's directory", len(es))
			}
			r := NewReader(p)
			if tc.read {
				err := drainEntries(r)
				if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
			}
			r.Close()
			if open := openIn(t, d); len(open) != 0 {
				t.Fatalf("still open after Close: %q", open)
			}
		})
	}
}

// drainEntries reads every entry and its data, and the end.
func drainEntries(r *Reader) error {
	for {
		if _, err := r.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	}
}
