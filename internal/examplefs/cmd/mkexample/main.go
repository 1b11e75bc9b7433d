// Command mkexample writes the example rootfs tar used by `make demo`.
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/ext4pack/ext4pack/internal/examplefs"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkexample OUT.tar")
		os.Exit(2)
	}
	f, err := os.Create(os.Args[1])
	if err == nil {
		bw := bufio.NewWriter(f)
		err = examplefs.Write(bw)
		if err == nil {
			err = bw.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkexample:", err)
		os.Exit(1)
	}
}
