package main

import (
	"context"
	"os"
	"runtime/pprof"
	"time"
	"fmt"

	"github.com/ext4pack/ext4pack"
)

func main() {
	f, _ := os.Create(os.Args[2])
	pprof.StartCPUProfile(f)
	start := time.Now()
	for i := 0; i < 5; i++ {
		out, _ := os.Create("/dev/shm/prof.img")
		var src ext4pack.Source
		if os.Args[1] == "tar" {
			in, _ := os.Open("/dev/shm/rootfs.tar")
			src = ext4pack.Source{Tar: in}
		} else {
			src = ext4pack.Source{Image: os.Args[1]}
		}
		if _, err := ext4pack.Build(context.Background(), src, out, ext4pack.Options{}); err != nil {
			panic(err)
		}
		out.Close()
	}
	pprof.StopCPUProfile()
	fmt.Println(time.Since(start) / 5)
}
