package spool

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func data(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// write writes p into s in pieces of k bytes from a goroutine, then
// closes it with err.
func write(s *Spool, p []byte, k int, err error) chan error {
	done := make(chan error, 1)
	go func() {
		for i := 0; i < len(p); i += k {
			if _, err := s.Write(p[i:min(i+k, len(p))]); err != nil {
				s.CloseWrite(err)
				done <- err
				return
			}
		}
		s.CloseWrite(err)
		done <- nil
	}()
	return done
}

// openSpoolFiles lists this process's open files in dir, deleted or not
// (Linux: /proc/self/fd).
func openSpoolFiles(t *testing.T, dir string) []string {
	if runtime.GOOS != "linux" {
		return nil
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			open = append(open, target)
		}
	}
	return open
}

func entries(t *testing.T, dir string) int {
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestInMemory: below the cap nothing goes to a file; the bytes come
// back in order, whatever the sizes of the writes and the reads.
func TestInMemory(t *testing.T) {
	dir := t.TempDir()
	s := New(1<<20, 1<<30, dir)
	want := data(700 << 10)
	done := write(s, want, 4099, nil)
	got, err := io.ReadAll(iotestHalf{s})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, %v; want the %d written", len(got), err, len(want))
	}
	<-done
	if s.Spilled() != 0 || entries(t, dir) != 0 {
		t.Errorf("%d bytes went to a file", s.Spilled())
	}
	s.Close()
}

// iotestHalf reads half of what is asked, to vary the reads.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) { return h.r.Read(p[:(len(p)+1)/2]) }

// TestSpills: a stream bigger than the memory cap goes to a temporary
// file in the directory, which has no name there (unlinked when made),
// comes back whole and in order, and is gone once the spool is closed:
// after a clean end, after the writer's failure, and when the reader
// gives up (cancellation) while the writer writes on.
func TestSpills(t *testing.T) {
	want := data(8 << 20)
	for _, tc := range []struct {
		name    string
		werr    error // the writer's end
		readTo  int   // the reader stops after this many bytes; 0: reads all
		wantErr error
	}{
		{name: "clean", wantErr: nil},
		{name: "writer fails", werr: errors.New("corrupt layer"), wantErr: errors.New("corrupt layer")},
		{name: "reader gives up", readTo: 3 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := New(1<<20, 1<<30, dir)
			// The writer runs ahead: all of it is written before a
			// byte is read.
			if err := <-write(s, want, 64<<10, tc.werr); err != nil {
				t.Fatal(err)
			}
			if s.Spilled() < int64(len(want))-1<<20 {
				t.Fatalf("%d bytes spilled of %d with a 1 MiB cap", s.Spilled(), len(want))
			}
			if runtime.GOOS == "linux" {
				open := openSpoolFiles(t, dir)
				if len(open) != 1 || !strings.HasSuffix(open[0], " (deleted)") {
					t.Fatalf("open files in the spool's directory: %q; want one, deleted", open)
				}
			}
			if runtime.GOOS != "windows" && entries(t, dir) != 0 {
				t.Fatalf("the spool file has a name in %s", dir)
			}
			var got []byte
			var err error
			if tc.readTo > 0 {
				got = make([]byte, tc.readTo)
				_, err = io.ReadFull(s, got)
			} else {
				got, err = io.ReadAll(s)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("read: %v", err)
			case tc.wantErr != nil && (err == nil || err.Error() != tc.wantErr.Error()):
				t.Fatalf("read error %v, want %v", err, tc.wantErr)
			case !bytes.Equal(got, want[:len(got)]) || tc.readTo == 0 && len(got) != len(want):
				t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if open := openSpoolFiles(t, dir); len(open) != 0 || entries(t, dir) != 0 {
				t.Fatalf("left after Close: open %q, %d entries", open, entries(t, dir))
			}
			if _, err := s.Write([]byte("x")); !errors.Is(err, ErrClosed) {
				t.Errorf("a write after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// TestNoDirWaits: without a directory the writer waits for room, and
// Close releases a writer that waits.
func TestNoDirWaits(t *testing.T) {
	s := New(64<<10, 0, "")
	done := write(s, data(1<<20), 16<<10, nil)
	time.Sleep(50 * time.Millisecond)
	s.mu.Lock()
	held := s.memBytes
	s.mu.Unlock()
	if held > 64<<10 {
		t.Fatalf("%d bytes held with a cap of 64 KiB", held)
	}
	buf := make([]byte, 100<<10)
	io.ReadFull(s, buf)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("the waiting writer got %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release the waiting writer")
	}
}

// TestFileCap: beyond its file's cap the writer waits for the reader.
func TestFileCap(t *testing.T) {
	s := New(64<<10, 1<<20, t.TempDir())
	want := data(4 << 20)
	done := write(s, want, 32<<10, nil)
	time.Sleep(100 * time.Millisecond)
	if n := s.Spilled(); n > 1<<20 {
		t.Fatalf("%d bytes in the file unread, with a cap of 1 MiB", n)
	}
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.Close()
}
