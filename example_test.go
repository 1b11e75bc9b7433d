package ext4pack_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ext4pack/ext4pack"
)

// rootfsTar is a tiny rootfs tar, as `docker export` would give.
func rootfsTar() *bytes.Buffer {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
	tw.WriteHeader(&tar.Header{Name: "etc/os-release", Typeflag: tar.TypeReg, Mode: 0o644, Size: 10, ModTime: mtime})
	tw.Write([]byte("ID=debian\n"))
	tw.Close()
	return &b
}

// An image from a rootfs tar; nothing is left at the path on failure.
func ExampleBuildImage() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	src := ext4pack.Source{Tar: rootfsTar(), TarName: "rootfs.tar"}
	b, err := ext4pack.BuildImage(context.Background(), src, filepath.Join(dir, "rootfs.ext4"), ext4pack.Options{})
	if err != nil {
		log.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, "rootfs.ext4"))
	fmt.Println(b.Info.Entries, "entries,", st.Size()>>20, "MiB")
	// Output: 2 entries, 64 MiB
}

// A bundle from a rootfs tar. Options.Bundle makes the image a bundle's;
// NoAgents leaves out the guest files, which a plain `go build` does not
// embed (`make build` does).
func ExampleMakeBundle() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	src := ext4pack.Source{Tar: rootfsTar()}
	o := ext4pack.Options{Arch: "x86_64", Bundle: &ext4pack.BundleOptions{Name: "tiny", NoAgents: true}}
	res, err := ext4pack.MakeBundle(context.Background(), src, filepath.Join(dir, "tiny.tar.zst"), o)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Base(res.Path), res.Manifest.Name, res.Manifest.Arch, res.Manifest.Distro)
	// Output: tiny.tar.zst tiny x86_64 debian
}

// A bundle from a container image, here one on a registry. Its layers are
// built as they download; the manifest records where it came from.
func ExampleMakeBundle_image() {
	src := ext4pack.Source{Image: "docker://docker.io/library/debian:bookworm", Platform: "linux/arm64"}
	o := ext4pack.Options{Bundle: &ext4pack.BundleOptions{Name: "debian-12"}}
	res, err := ext4pack.MakeBundle(context.Background(), src, "", o) // ./debian-12-aarch64.tar.zst
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Path, res.SHA256, res.Manifest.Source.Digest)
}
