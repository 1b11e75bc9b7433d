//go:build !linux

package main

import (
	"fmt"
	"io"
	"os"
)

// runInit: ext4pack-init is a Linux guest's init and nothing else; this
// file only lets the package build (and be vetted) elsewhere.
func runInit() {
	fmt.Fprintln(os.Stderr, "ext4pack-init: Linux only")
	os.Exit(1)
}

func networkTool(_, _ string, stderr io.Writer) int {
	fmt.Fprintln(stderr, "ext4pack-init: Linux only")
	return 1
}

func growTool(_ string, stderr io.Writer) int {
	fmt.Fprintln(stderr, "ext4pack-init: Linux only")
	return 1
}
