package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Outputs are written to a temporary file beside the target and renamed
// into place on success; a failure or a signal removes the temporary file
// (SPEC "Output files").
//
// temps guards the set of temporary files and the rename: the signal
// handler's cleanupTemps takes the lock and never gives it back, so once
// it has run no temporary file can be made and none renamed into place.
var temps struct {
	sync.Mutex
	paths   map[string]*os.File
	done    []string // outputs this run renamed into place
	stopped bool     // cleanupTemps ran: the process is exiting
}

// errInterrupted is returned to the main goroutine if it reaches an
// output step after a signal; the process exits before it matters.
var errInterrupted = errors.New("interrupted")

// createTemp makes the temporary file for final, in final's directory so
// that the rename is atomic.
func createTemp(final string) (*os.File, error) {
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("output directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("output directory %s is not a directory", dir)
	}
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		// Found now rather than at the rename, after all the work.
		return nil, fmt.Errorf("output %s is a directory", final)
	}
	temps.Lock()
	defer temps.Unlock()
	if temps.stopped {
		return nil, errInterrupted
	}
	// Registered under the same lock it is made in, so that a signal
	// cannot fall between the two and leave it behind.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating the output in %s: %w", dir, err)
	}
	if temps.paths == nil {
		temps.paths = map[string]*os.File{}
	}
	temps.paths[f.Name()] = f
	return f, nil
}

// commit syncs and closes f and renames it to final.
func commit(f *os.File, final string) error {
	fail := func(err error) error {
		discard(f)
		return fmt.Errorf("writing %s: %w", final, err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	temps.Lock()
	defer temps.Unlock()
	if temps.stopped {
		return errInterrupted
	}
	delete(temps.paths, f.Name())
	if err := os.Rename(f.Name(), final); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("renaming the output into place as %s: %w", final, err)
	}
	temps.done = append(temps.done, final)
	return nil
}

// discard closes and removes a temporary file.
func discard(f *os.File) {
	f.Close()
	temps.Lock()
	defer temps.Unlock()
	os.Remove(f.Name())
	delete(temps.paths, f.Name())
}

// cleanupTemps removes every temporary file still there. The signal
// handler calls it just before it exits; it keeps the lock, so that the
// main goroutine, still running, cannot make or rename an output after it.
func cleanupTemps() {
	temps.Lock()
	temps.stopped = true
	for p, f := range temps.paths {
		// Closed first: Windows does not remove a file that is open.
		// The goroutine still writing it fails, and the process exits.
		f.Close()
		os.Remove(p)
	}
	// A signal after the rename, while ext4pack prints or exits, leaves
	// no output either: the handler says none was written.
	for _, p := range temps.done {
		os.Remove(p)
	}
	temps.paths, temps.done = nil, nil
}
