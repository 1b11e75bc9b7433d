package boottest

import (
	"archive/tar"
	"bufio"
	_ "embed"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
)

// The in-guest checker: a script and the unit that runs it after
// multi-user.target. They are part of the test's rootfs, not of ext4pack.
var (
	//go:embed guest/boottest-check.sh
	checkScript []byte
	//go:embed guest/boottest-check.service
	checkUnit []byte
)

// Where the test rootfs puts its own files.
const (
	checkScriptPath = "usr/local/sbin/boottest-check"
	checkUnitPath   = "etc/systemd/system/boottest-check.service"
	checkWantsPath  = "etc/systemd/system/multi-user.target.wants/boottest-check.service"
	modulesConfPath = "etc/modules-load.d/boottest-virtio-net.conf"
)

// modulesConf makes systemd-modules-load load the network card's driver. A
// minbase rootfs has no udev to load it when the PCI device shows up, and
// Debian builds virtio_pci and virtio_net as modules.
const modulesConf = "# ext4pack boot test: the network card's driver, which no udev loads here.\nvirtio_pci\nvirtio_net\n"

// variant is how one boot's rootfs differs from the shared test rootfs: a
// negative control breaks one thing the checker must catch.
type variant struct {
	// edits change base tar entries, by clean name. Each must match an
	// entry, so that a control cannot silently break nothing.
	edits map[string]func(*tar.Header)
	// symlinks are added after everything else, name to target.
	symlinks map[string]string
}

// composeTestTar writes dst: the base rootfs tar, with
//   - /etc/machine-id empty, so that the guest makes its own at first boot,
//     as it would from a shared image;
//   - /etc/hostname "localhost", so that the hostname check sees the name
//     the network bootstrap set and not one debootstrap copied from the host;
//   - /etc/resolv.conf empty: debootstrap copies the host's, whose
//     nameservers mean nothing in the guest;
//
// plus the kernel's modules (with depmod's indexes), the modules-load.d
// entry for virtio, the checker and its enabled unit, then v's changes.
func composeTestTar(dst, base string, k kernel, v variant) (err error) {
	in, err := os.Open(base)
	if err != nil {
		return err
	}
	defer in.Close()
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
	for name := range v.edits {
		if !matched[name] {
			return fmt.Errorf("%s has no entry %s to change", base, name)
		}
	}

	modules, err := c.resolveDir("lib/modules")
	if err != nil {
		return err
	}
	if err := c.addTree(path.Join(modules, k.version), k.modules); err != nil {
		return fmt.Errorf("adding the kernel's modules: %w", err)
	}
	if err := c.addFile(modulesConfPath, 0o644, []byte(modulesConf)); err != nil {
		return err
	}
	if err := c.addFile(checkScriptPath, 0o755, checkScript); err != nil {
		return err
	}
	if err := c.addFile(checkUnitPath, 0o644, checkUnit); err != nil {
		return err
	}
	if err := c.addSymlink(checkWantsPath, "/"+checkUnitPath); err != nil {
		return err
	}
	names := make([]string, 0, len(v.symlinks))
	for name := range v.symlinks {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := c.addSymlink(strings.TrimPrefix(name, "/"), v.symlinks[name]); err != nil {
			return err
		}
	}
	if err := c.Close(); err != nil {
		return err
	}
	return bw.Flush()
}
