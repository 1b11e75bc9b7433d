package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Outputs are written to a temporary file beside the target and renamed
// into place on success; a failure or a signal removes the temporary file.
var temps struct {
	sync.Mutex
	paths map[string]bool
}

// createTemp makes the temporary file for final.
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
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating the output in %s: %w", dir, err)
	}
	temps.Lock()
	if temps.paths == nil {
		temps.paths = map[string]bool{}
	}
	temps.paths[f.Name()] = true
	temps.Unlock()
	return f, nil
}

// commit syncs and closes f and renames it to final.
func commit(f *os.File, final string) error {
	if err := f.Sync(); err != nil {
		discard(f)
		return fmt.Errorf("writing %s: %w", final, err)
	}
	if err := f.Chmod(0o644); err != nil {
		discard(f)
		return fmt.Errorf("writing %s: %w", final, err)
	}
	if err := f.Close(); err != nil {
		discard(f)
		return fmt.Errorf("writing %s: %w", final, err)
	}
	if err := os.Rename(f.Name(), final); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("renaming the output into place: %w", err)
	}
	forget(f.Name())
	return nil
}

// discard closes and removes a temporary file.
func discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
	forget(f.Name())
}

func forget(p string) {
	temps.Lock()
	delete(temps.paths, p)
	temps.Unlock()
}

// cleanupTemps removes every temporary file still open (on a signal).
func cleanupTemps() {
	temps.Lock()
	defer temps.Unlock()
	for p := range temps.paths {
		os.Remove(p)
	}
}
