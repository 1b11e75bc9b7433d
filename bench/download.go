//go:build linux

package main

import (
	"context"
	"errors"

	"github.com/ext4pack/ext4pack/imagesrc"
)

// downloadMain is the images phase's "download alone": ext4pack's own
// pull of an image, with the build left out. It opens the image as the
// build does (imagesrc.Open) and reads every layer's blob, oldest first,
// through Layer.Open and imagesrc.Finish, which check its size and
// digest, into nothing. So the pull-and-build row is judged against the
// download ext4pack itself makes, not another tool's. The harness runs
// it as a process of its own, timed as every row is.
func downloadMain(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: bench download REF")
	}
	ctx := context.Background()
	im, err := imagesrc.Open(ctx, args[0], imagesrc.Options{UserAgent: "ext4pack-bench"})
	if err != nil {
		return err
	}
	defer im.Close()
	for _, l := range im.Layers {
		rc, err := l.Open(ctx)
		if err != nil {
			return err
		}
		err = imagesrc.Finish(rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
