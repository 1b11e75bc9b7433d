//go:build linux || darwin

package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"github.com/creack/pty"
)

// TestProgressOnTerminal runs make-bundle with its output on a pseudo
// terminal, as a user at a terminal sees it: a self-overwriting line for
// reading and building, then hashing and compressing, each with a
// percentage of a known total and the time left, and at the end the
// line cleared and the three result lines. Without a terminal there is
// no progress at all (the other tests read stderr as text).
func TestProgressOnTerminal(t *testing.T) {
	bin := buildBinary(t)
	in := textTar(t, 40) // text: slow to compress at best
	out := filepath.Join(t.TempDir(), "b.tar.zst")
	cmd := exec.Command(bin, "make-bundle", "--rootfs-tar", in, "--name", "progress", "--no-agents", "--out", out)
	// One core, so that compressing takes long enough to estimate on a
	// fast machine too.
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var seen bytes.Buffer
	_, err = io.Copy(&seen, tty)
	if err != nil && !errors.Is(err, syscall.EIO) { // EIO: the child closed the terminal
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("make-bundle: %v\n%q", err, seen.String())
	}
	text := seen.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`\r\x1b\[Kreading .*text\.tar: \d+% of [0-9.]+ MiB`),
		regexp.MustCompile(`\r\x1b\[Khashing: \d+% of`),
		// GOMAXPROCS 1: one worker, as the line says.
		regexp.MustCompile(`\r\x1b\[Kcompressing on 1 worker: \d+% of [0-9.]+ MiB, \d+s left`),
		regexp.MustCompile(`\r\x1b\[K(\r\n)?path: ` + regexp.QuoteMeta(out) + `\r\nsha256: [0-9a-f]{64}\r\nsize: \d+\r\n$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the terminal did not show %s; it showed:\n%q", want, lastOf(text, 2000))
		}
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}

// textTar writes a tar of mib MiB of word salad: compressible, so that
// zstd's best level works at it for seconds. The words are thousands, as
// a language's are: from a handful, the matches run so long that zstd
// went through 40 MiB in under the second the time left waits for.
func textTar(t *testing.T, mib int) string {
	rng := rand.New(rand.NewPCG(3, 4))
	words := make([]string, 4096)
	for i := range words {
		w := make([]byte, 3+rng.IntN(8))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		words[i] = string(w)
	}
	var text bytes.Buffer
	for text.Len() < mib<<20 {
		text.WriteString(words[rng.IntN(len(words))])
		text.WriteByte(" \n"[rng.IntN(2)])
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "text", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(text.Len())})
	tw.Write(text.Bytes())
	tw.Close()
	return writeTemp(t, "text.tar", b.Bytes())
}

func lastOf(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
