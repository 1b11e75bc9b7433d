// Command ext4pack turns a docker-export style rootfs tar into a bootable
// ext4 image, with no root, no loop device and no e2fsprogs.
package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ext4pack/ext4pack"
)

// gitCommit is the git commit the binary was built from; when the build
// did not stamp it, version takes it from the Go toolchain's VCS stamp, if
// there is one.
var gitCommit = ""

// usageError marks a bad command line: exit code 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func newApp(s *session, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "ext4pack",
		Usage: "turn a rootfs tar or a container image into an ext4 image or a microVM bundle",
		Description: `Examples:
   docker export $(docker create debian:bookworm) | ext4pack image --rootfs-tar - --out rootfs.ext4
   ext4pack make-bundle --rootfs-tar rootfs.tar --name debian-12 --json
   ext4pack inspect debian-12-x86_64.tar.zst /etc/os-release`,
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			imageCommand(s),
			makeBundleCommand(s),
			inspectCommand(s),
			cacheCommand(),
			versionCommand(),
		},
		// Errors are printed once, by main, with the right exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		HideHelpCommand: true,
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
		for _, sub := range cmd.Subcommands {
			sub.OnUsageError = app.OnUsageError
		}
	}
	return app
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the commit, the Go version and the embedded guest binaries' checksums",
		Description: `Example:
   ext4pack version`,
		Action: func(c *cli.Context) error {
			printVersion(c.App.Writer)
			return nil
		},
	}
}

// printVersion writes what `ext4pack version` prints (SPEC "CLI"): the
// version, the commit, the Go version, and the SHA-256 of each guest binary
// this build carries.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "ext4pack %s\n", ext4pack.Version)
	fmt.Fprintf(w, "commit: %s\n", buildCommit())
	fmt.Fprintf(w, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	bins := ext4pack.GuestBinaries()
	if len(bins) == 0 {
		fmt.Fprintln(w, "guest binaries: none embedded (build with `make build` or `make dist`)")
	}
	for _, b := range bins {
		fmt.Fprintf(w, "%s: sha256 %x\n", b.Name, sha256.Sum256(b.Data))
	}
}

// buildCommit is gitCommit, or the VCS revision go build stamped (with a
// "-dirty" suffix for a modified tree), or "unknown".
func buildCommit() string {
	if gitCommit != "" {
		return gitCommit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev == "":
		return "unknown"
	case dirty:
		return rev + "-dirty"
	}
	return rev
}

func main() {
	// ext4pack's heap is the tree of the image being written, which only
	// grows; Go's default of collecting when the heap doubles would make
	// the peak twice that tree. Half keeps a 1M-entry tar under 300 bytes
	// of memory an entry for a few percent of CPU. GOGC still overrides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	s := newSession()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case sig := <-sigs:
			s.interrupt(sig, stderr)
		case <-finished:
		}
	}()
	err := newApp(s, stdout, stderr).RunContext(s.ctx, args)
	s.finish()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "ext4pack: %v\n", err)
	// A signal's exit code (130, 143) is the session's: it exits itself.
	if ue := (usageError{}); errors.As(err, &ue) {
		fmt.Fprintln(stderr, "Run 'ext4pack --help' or 'ext4pack COMMAND --help' for usage.")
		return 2
	}
	return 1
}
