package boottest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runOpts are the less common settings of runTool.
type runOpts struct {
	dir           string   // working directory; "" for the current one
	env           []string // added to the environment
	privateMounts bool     // run in a mount namespace of its own (Linux)
}

// maxErrOutput is how much of a failed command's output its error carries:
// the end, where the reason usually is.
const maxErrOutput = 8 << 10

// runTool runs name with args, killing it and everything it started after
// timeout, and returns its combined output. The locale is C, so that the
// output parsed here (apt-cache's "Depends:") is the English one.
func runTool(ctx context.Context, timeout time.Duration, o runOpts, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path, err := lookTool(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = o.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "LANGUAGE=")
	cmd.Env = append(cmd.Env, o.env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	isolate(cmd)
	// A child that keeps the output pipe open after being killed must not
	// keep Wait waiting.
	cmd.WaitDelay = 10 * time.Second
	if o.privateMounts {
		if err := privateMounts(cmd); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	err = cmd.Run()
	if err == nil {
		return out.Bytes(), nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("killed after %v: %w", time.Since(start).Round(time.Second), err)
	}
	return out.Bytes(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out.Bytes(), maxErrOutput))
}

// tail returns at most the last n bytes of b, marked when cut.
func tail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return "[...]\n" + string(b[len(b)-n:])
}

// sbinDirs are searched after PATH: debootstrap and depmod live in sbin,
// which a non-root user's PATH on Debian lacks.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// lookTool finds name on PATH or in sbinDirs.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH, /usr/sbin or /sbin", name)
}
