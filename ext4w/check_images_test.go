package ext4w_test

// check_images_test.go runs the self-check over the kinds of image the
// other ext4w tests build (each entry type, deep extent trees, one- and
// two-level htrees, shared xattr blocks, replaced and removed entries,
// several groups with backups, a short last group), and compares each
// image's paths with what was written.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
)

func TestSelfCheckImages(t *testing.T) {
	sym := func(target string) *ext4w.File {
		return &ext4w.File{Type: ext4w.TypeSymlink, Mode: 0o777, Linkname: target, Mtime: mtime}
	}
	dirf := func(mode uint32) *ext4w.File { return &ext4w.File{Type: ext4w.TypeDir, Mode: mode, Mtime: mtime} }
	acl := ext4w.EncodeACLXattr([]ext4w.ACLEntry{{Tag: 1, Perm: 7}, {Tag: 2, Perm: 5, ID: 1000}, {Tag: 4, Perm: 5},
		{Tag: 8, Perm: 1, ID: 50}, {Tag: 0x10, Perm: 7}, {Tag: 0x20, Perm: 4}})
	for _, tc := range []struct {
		name  string
		opts  []ext4w.Option
		fn    func(w *ext4w.Writer) error
		paths []string // that must be there, beyond "." and lost+found
		large bool
	}{
		{name: "empty", fn: func(w *ext4w.Writer) error { return nil }},
		{name: "every type", fn: func(w *ext4w.Writer) error {
			return errors.Join(
				create(w, "f", reg(0o4755, 12345), content("f", 12345)),
				w.Create("d", dirf(0o1777)),
				w.Create("fast", sym(strings.Repeat("s", 59))),
				w.Create("slow", sym(strings.Repeat("s/", 2047)+"x")),
				w.Create("null", &ext4w.File{Type: ext4w.TypeCharDev, Mode: 0o666, Devmajor: 1, Devminor: 3, Mtime: mtime}),
				w.Create("big", &ext4w.File{Type: ext4w.TypeBlockDev, Mode: 0o660, Devmajor: 4095, Devminor: 1<<20 - 1, Mtime: mtime}),
				w.Create("fifo", &ext4w.File{Type: ext4w.TypeFifo, Mode: 0o600, Mtime: mtime}),
				w.Create("sock", &ext4w.File{Type: ext4w.TypeSocket, Mode: 0o755, Mtime: mtime}),
				w.Link("f", "d/hard"))
		}, paths: []string{"f", "d", "d/hard", "fast", "slow", "null", "big", "fifo", "sock"}},
		{name: "extent tree of depth 2", fn: func(w *ext4w.Writer) error {
			return create(w, "f", reg(0o644, 3000*4096), sparse(3000))
		}, paths: []string{"f"}},
		{name: "htree of 3000 names", fn: func(w *ext4w.Writer) error {
			var errs []error
			for i := 0; i < 3000; i++ {
				errs = append(errs, create(w, fmt.Sprintf("d/entry-%05d-%s", i, strings.Repeat("x", i%40)), reg(0o644, 0), nil))
			}
			return errors.Join(errs...)
		}, paths: []string{"d/entry-02999-" + strings.Repeat("x", 2999%40)}},
		{name: "two-level htree of long names", fn: func(w *ext4w.Writer) error {
			// 15 names of 250 bytes fill a leaf: 9000 names need more
			// leaves than a dx_root indexes.
			for i := 0; i < 9000; i++ {
				if err := w.Create(fmt.Sprintf("d/%06d%s", i, strings.Repeat("n", 244)), reg(0o644, 0)); err != nil {
					return err
				}
			}
			return nil
		}, paths: []string{"d/008999" + strings.Repeat("n", 244)}},
		{name: "xattrs inline, in shared blocks, ACLs", fn: func(w *ext4w.Writer) error {
			var errs []error
			for i := 0; i < 20; i++ {
				f := reg(0o644, 0)
				f.Xattrs = map[string][]byte{"user.big": content("x", 2048), "trusted.t": {0, 1, 2}, "user.z": []byte(fmt.Sprint(i % 2)),
					"system.posix_acl_access": acl, "security.capability": make([]byte, 20)}
				errs = append(errs, create(w, fmt.Sprintf("f%d", i), f, nil))
			}
			d := dirf(0o755)
			d.Xattrs = map[string][]byte{"system.posix_acl_default": acl, "user." + strings.Repeat("k", 255): content("v", 3000)}
			errs = append(errs, w.Create("d", d))
			return errors.Join(errs...)
		}, paths: []string{"f0", "f19", "d"}},
		{name: "replace and remove", fn: func(w *ext4w.Writer) error {
			return errors.Join(
				create(w, "f", reg(0o644, 8192), content("old", 8192)),
				create(w, "f", reg(0o600, 5), content("new", 5)),
				create(w, "d/x", reg(0o644, 4096), content("x", 4096)),
				create(w, "d", reg(0o644, 3), content("y", 3)),
				create(w, "e/sub/y", reg(0o644, 0), nil),
				w.Create("e", dirf(0o700)),
				create(w, "g/z", reg(0o644, 100), content("z", 100)),
				w.Link("g/z", "g/z2"),
				w.Remove("g/z"),
				w.Remove("e/sub"))
		}, paths: []string{"f", "d", "e", "g/z2"}},
		{name: "several groups and backups", opts: []ext4w.Option{ext4w.WithSize(1 << 30)}, fn: func(w *ext4w.Writer) error {
			// More files than one group has inodes, and data past the
			// first backup region.
			for i := 0; i < 9000; i++ {
				if err := create(w, fmt.Sprintf("d%d/f%d", i%13, i), reg(0o644, 100), content(fmt.Sprint(i), 100)); err != nil {
					return err
				}
			}
			return create(w, "big", reg(0o644, 200<<20), content("big", 200<<20))
		}, paths: []string{"d0/f0", "big"}},
		{name: "short last group, 3 GDT blocks", opts: []ext4w.Option{ext4w.WithSize(20<<30 + 300<<20)}, fn: func(w *ext4w.Writer) error {
			return create(w, "f", reg(0o644, 10), content("f", 10))
		}, paths: []string{"f"}},
		{name: "100 inodes", opts: []ext4w.Option{ext4w.WithInodes(100)}, fn: func(w *ext4w.Writer) error {
			for i := 0; i < 80; i++ {
				if err := w.Create(fmt.Sprint(i), reg(0o644, 0)); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "dir_nlink past 65000 subdirectories", large: true, fn: func(w *ext4w.Writer) error {
			for i := 0; i < 65010; i++ {
				if err := w.Create(fmt.Sprintf("top/s%05d", i), dirf(0o755)); err != nil {
					return err
				}
			}
			return nil
		}, paths: []string{"top/s65009"}},
		{name: "times from 1901 to 2446", fn: func(w *ext4w.Writer) error {
			var errs []error
			for i, tm := range []time.Time{time.Unix(-1<<31, 0), time.Unix(-1, 999999999), time.Unix(0, 1),
				time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC), time.Date(2350, 1, 1, 0, 0, 0, 0, time.UTC),
				time.Unix(1<<31-1+3<<32, 999999999)} {
				f := reg(0o644, 0)
				f.Mtime, f.Atime = tm, tm.Add(time.Second)
				errs = append(errs, create(w, fmt.Sprintf("t%d", i), f, nil))
			}
			return errors.Join(errs...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.large && testing.Short() {
				t.Skip("large")
			}
			img := build(t, tc.fn, tc.opts...)
			ext4w.CheckImage(t, img)
			got, err := ext4w.ReadBack(img)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range append(tc.paths, ".", "lost+found") {
				if _, ok := got[p]; !ok {
					t.Errorf("%s is not in the image", p)
				}
			}
		})
	}
}
