package boottest

import (
	"archive/tar"
	"bufio"
	_ "embed"
	"fmt"
	"os"
	"slices"
	"strings"
)

// The checker's systemd unit, and the inittab of Alpine's shape; the
// checker itself is a static binary built by the test (./checker).
var (
	//go:embed guest/boottest-check.service
	checkUnit []byte
	//go:embed guest/alpine-inittab
	alpineInittab []byte
)

// Where the test rootfs puts its own files.
const (
	checkerPath    = "usr/local/sbin/boottest-check"
	checkConfPath  = "etc/boottest.json"
	checkUnitPath  = "etc/systemd/system/boottest-check.service"
	checkWantsPath = "etc/systemd/system/multi-user.target.wants/boottest-check.service"
	setuidProbe    = "usr/local/share/boottest/setuid"
	ownedProbe     = "usr/local/share/boottest/owned"
	probeDir       = "var/lib/boottest"
)

// addEntry is an entry a variant adds after the base tar's.
type addEntry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	data     []byte
	link     string
}

// variant is how one boot's rootfs differs from its base tar: what every
// guest gets (the checker, its configuration, the probes), what its init
// needs to start the checker, and what a negative control breaks.
type variant struct {
	// edits change base tar entries, by clean name. Each must match an
	// entry, so that a control cannot silently break nothing.
	edits map[string]func(*tar.Header)
	// rewrite replaces the content of base tar regular files, by clean
	// name: the function gets the old content.
	rewrite map[string]func([]byte) []byte
	// add are written after the base tar's entries, in order, a later
	// entry replacing an earlier one of the same name. Their parents are
	// resolved through the tar's symlinks (sbin -> usr/sbin).
	add []addEntry
	// symlinks are added after everything else, name to target.
	symlinks map[string]string
}

// composeTestTar writes dst: the base rootfs tar (none if base is ""), with
//   - /etc/machine-id empty, so that the guest makes its own at first boot,
//     as it would from a shared image;
//   - /etc/hostname "localhost", so that the hostname check sees the name
//     the network set-up set and not one debootstrap copied from the host;
//   - /etc/resolv.conf empty: debootstrap copies the host's;
//
// then v's changes and additions.
func composeTestTar(dst, base string, v variant) (err error) {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(out, 1<<20)
	c := newTarComposer(bw)

	matched := map[string]bool{}
	if base != "" {
		in, err := os.Open(base)
		if err != nil {
			return err
		}
		defer in.Close()
		edit := func(name string, hdr *tar.Header) ([]byte, bool, error) {
			if fn, ok := v.edits[name]; ok {
				fn(hdr)
				matched[name] = true
			}
			if hdr.Typeflag != tar.TypeReg {
				return nil, false, nil
			}
			switch name {
			case "etc/machine-id", "etc/resolv.conf":
				return []byte{}, false, nil
			case "etc/hostname":
				return []byte("localhost\n"), false, nil
			}
			return nil, false, nil
		}
		if err := c.copyFrom(in, edit); err != nil {
			return fmt.Errorf("copying %s: %w", base, err)
		}
	}
	// An edit may also change an entry added here (a probe file).
	for i, e := range v.add {
		if fn, ok := v.edits[e.name]; ok {
			h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid}
			fn(h)
			v.add[i].mode, v.add[i].uid, v.add[i].gid = h.Mode, h.Uid, h.Gid
			matched[e.name] = true
		}
	}
	for name := range v.edits {
		if !matched[name] {
			return fmt.Errorf("%s has no entry %s to change", base, name)
		}
	}
	for name, fn := range v.rewrite {
		old, real, ok := c.content(name)
		if !ok {
			return fmt.Errorf("%s has no regular file %s to rewrite", base, name)
		}
		v.add = append([]addEntry{{name: real, typ: tar.TypeReg, mode: 0o644, data: fn(old)}}, v.add...)
	}
	for _, e := range v.add {
		if err := c.addEntry(e); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(v.symlinks))
	for name := range v.symlinks {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := c.addEntry(addEntry{name: strings.TrimPrefix(name, "/"), typ: tar.TypeSymlink, link: v.symlinks[name]}); err != nil {
			return err
		}
	}
	if err := c.Close(); err != nil {
		return err
	}
	return bw.Flush()
}
