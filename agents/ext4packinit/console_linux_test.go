package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestConsoleLog: without a console, PID 1's lines wait until /dev is
// mounted, then go to the console if it can be opened now, else to the
// kernel's log, one record a line.
func TestConsoleLog(t *testing.T) {
	t.Run("console from the start", func(t *testing.T) {
		var stderr bytes.Buffer
		c := newConsoleLog(true, &stderr, filepath.Join(t.TempDir(), "kmsg"))
		c.line("ext4pack-init: booting")
		if c.settle(func() error { t.Error("reopen called with a console"); return nil }) != logStderr {
			t.Error("mode is not stderr")
		}
		if stderr.String() != "ext4pack-init: booting\n" {
			t.Errorf("stderr %q", stderr.String())
		}
	})
	t.Run("console opened late", func(t *testing.T) {
		var stderr bytes.Buffer
		kmsg := filepath.Join(t.TempDir(), "kmsg")
		c := newConsoleLog(false, &stderr, kmsg)
		c.line("one")
		c.line("two")
		if stderr.Len() != 0 {
			t.Errorf("written before settle: %q", stderr.String())
		}
		if c.settle(func() error { return nil }) != logStderr {
			t.Error("mode is not stderr")
		}
		c.line("three")
		if stderr.String() != "one\ntwo\nthree\n" {
			t.Errorf("stderr %q", stderr.String())
		}
		if _, err := os.Stat(kmsg); err == nil {
			t.Error("kmsg written")
		}
	})
	t.Run("kernel log", func(t *testing.T) {
		var stderr bytes.Buffer
		kmsg := filepath.Join(t.TempDir(), "kmsg")
		if err := os.WriteFile(kmsg, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c := newConsoleLog(false, &stderr, kmsg)
		c.line("ext4pack-init: booting")
		if c.settle(func() error { return errors.New("no such device") }) != logKmsg {
			t.Error("mode is not kmsg")
		}
		c.line("ext4pack-init: panic: x\nstack line")
		b, err := os.ReadFile(kmsg)
		if err != nil {
			t.Fatal(err)
		}
		if want := "<6>ext4pack-init: booting\n<6>ext4pack-init: panic: x\n<6>stack line\n"; string(b) != want {
			t.Errorf("kmsg %q, want %q", b, want)
		}
		if stderr.Len() != 0 {
			t.Errorf("stderr %q", stderr.String())
		}
	})
	t.Run("bounded", func(t *testing.T) {
		c := newConsoleLog(false, &bytes.Buffer{}, "")
		for range maxPending + 10 {
			c.line("x")
		}
		if len(c.pending) != maxPending {
			t.Errorf("%d lines kept", len(c.pending))
		}
	})
}

func TestHasConsole(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if hasConsole(int(null.Fd())) {
		t.Error("/dev/null counts as a console")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if !hasConsole(int(w.Fd())) {
		t.Error("a pipe does not count as a console")
	}
	if hasConsole(1 << 20) {
		t.Error("a closed descriptor counts as a console")
	}
}
