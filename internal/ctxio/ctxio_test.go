package ctxio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStalledPipe: a read blocked on a writer that never writes again
// returns ctx's error once ctx is cancelled; what came before it arrived
// whole.
func TestStalledPipe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	defer pw.Close()
	r := NewReader(ctx, pr)
	defer r.Close()
	go pw.Write([]byte("hello"))
	got := make([]byte, 5)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the read of a stalled pipe returned %v before the cancel", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("after the cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read of a stalled pipe did not return after the cancel")
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("a read after the cancel: %v, want context.Canceled", err)
	}
}

// TestReaders: both kinds pass every byte and the error at the end
// through, and stop before reading once ctx is done.
func TestReaders(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 100000)
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name string
		r    func() io.Reader
		pipe bool
	}{
		{"regular file", func() io.Reader { f.Seek(0, 0); return f }, false},
		{"bytes", func() io.Reader { return bytes.NewReader(data) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			r := NewReader(ctx, tc.r())
			defer r.Close()
			if _, ok := r.(*pipeReader); ok != tc.pipe {
				t.Errorf("read on a goroutine of its own: %v, want %v", ok, tc.pipe)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("read %d bytes, %v; want %d", len(got), err, len(data))
			}
			cancel()
			if _, err := r.Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
				t.Errorf("after the cancel: %v, want context.Canceled", err)
			}
		})
	}
}
