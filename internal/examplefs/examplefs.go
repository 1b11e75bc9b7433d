// Package examplefs writes the small example rootfs tar that `make demo`
// feeds to ext4pack, so that the demo needs no download. It holds one
// entry of every kind a rootfs has, with the metadata that tools most
// often get wrong: setuid bits, large ids, device numbers, hardlinks,
// xattrs and nanosecond times.
package examplefs

import (
	"archive/tar"
	"fmt"
	"io"
	"time"
)

// Epoch is the mtime of every entry: fixed, so the tar is reproducible.
var Epoch = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)

// Write writes the example tar to w.
func Write(w io.Writer) error {
	tw := tar.NewWriter(w)
	hdr := func(h *tar.Header) error {
		h.Format = tar.FormatPAX
		if h.ModTime.IsZero() {
			h.ModTime = Epoch
		}
		return tw.WriteHeader(h)
	}
	file := func(name string, mode int64, body string) error {
		if err := hdr(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body))}); err != nil {
			return err
		}
		_, err := io.WriteString(tw, body)
		return err
	}
	dirs := []string{"./", "bin/", "dev/", "etc/", "home/", "home/user/", "root/", "tmp/", "usr/", "usr/bin/",
		"usr/lib/", "usr/share/", "usr/share/doc/", "var/", "var/log/"}
	for _, d := range dirs {
		mode := int64(0o755)
		switch d {
		case "tmp/":
			mode = 0o1777
		case "root/":
			mode = 0o700
		}
		if err := hdr(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: mode}); err != nil {
			return err
		}
	}
	osRelease := "PRETTY_NAME=\"ext4pack example\"\nNAME=\"example\"\nID=example\nVERSION_ID=1\n"
	steps := []func() error{
		func() error { return file("usr/lib/os-release", 0o644, osRelease) },
		func() error {
			return hdr(&tar.Header{Name: "etc/os-release", Typeflag: tar.TypeSymlink, Linkname: "../usr/lib/os-release", Mode: 0o777})
		},
		func() error { return file("etc/hostname", 0o644, "example\n") },
		func() error {
			return file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nuser:x:100000:100000::/home/user:/bin/sh\n")
		},
		func() error { return file("etc/shadow", 0o640, "root:*:19000:0:99999:7:::\n") },
		func() error { return file("usr/bin/passwd", 0o4755, "#!/bin/sh\necho passwd\n") },
		func() error {
			return hdr(&tar.Header{Name: "usr/bin/ping", Typeflag: tar.TypeReg, Mode: 0o755, PAXRecords: map[string]string{
				// cap_net_raw+ep as a VFS_CAP_REVISION_2 value.
				"SCHILY.xattr.security.capability": string([]byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
			}})
		},
		func() error {
			return hdr(&tar.Header{Name: "home/user/notes.txt", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 100000, Gid: 100000,
				PAXRecords: map[string]string{"SCHILY.xattr.user.comment": "kept by ext4pack"}})
		},
		func() error {
			return hdr(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "../usr/bin/passwd", Mode: 0o777})
		},
		func() error {
			return hdr(&tar.Header{Name: "usr/bin/chfn", Typeflag: tar.TypeLink, Linkname: "usr/bin/passwd"})
		},
		func() error {
			return hdr(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3})
		},
		func() error {
			return hdr(&tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8, Gid: 6})
		},
		func() error { return hdr(&tar.Header{Name: "dev/initctl", Typeflag: tar.TypeFifo, Mode: 0o600}) },
		func() error {
			return hdr(&tar.Header{Name: "var/log/future.log", Typeflag: tar.TypeReg, Mode: 0o644,
				ModTime: time.Date(2040, 1, 1, 0, 0, 0, 5, time.UTC)})
		},
	}
	for i := 0; i < 300; i++ {
		i := i
		steps = append(steps, func() error {
			return file(fmt.Sprintf("usr/share/doc/package-%03d.txt", i), 0o644, fmt.Sprintf("documentation for package %d\n", i))
		})
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return tw.Close()
}
