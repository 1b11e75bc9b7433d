package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// ifaceWait is how long the network step waits for the interface: a
// virtio_net that is still probing shows up within a second or two.
const ifaceWait = 10 * time.Second

// netEnv is where the network step reads and writes, and how it loads a
// module, so that the tool and PID 1 share it.
type netEnv struct {
	sys      string               // sysfs, for the interfaces
	root     string               // for etc/hostname and etc/resolv.conf
	logf     func(string, ...any) // the console
	modprobe func(module string)  // loads a module where the guest can; may do nothing
	sleep    func(time.Duration)  // time.Sleep, but for tests
}

// applyIP applies c: hostname, resolv.conf, then the interface. Each part
// is tried even when an earlier one failed; the errors are joined.
func applyIP(c ipConfig, e netEnv) error {
	var errs []error
	if c.hostname != "" {
		if err := setHostname(c.hostname, e.root); err != nil {
			errs = append(errs, err)
		} else {
			e.logf("hostname %s", c.hostname)
		}
	}
	if rc := c.resolvConf(); rc != nil {
		if err := replaceFile(filepath.Join(e.root, "etc/resolv.conf"), rc, 0o644); err != nil {
			errs = append(errs, err)
		} else {
			e.logf("nameservers written to /etc/resolv.conf")
		}
	}
	if c.client.IsValid() {
		if err := configureIface(c, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// configureIface brings the interface up with the client address and the
// default route. Replacing, not adding, makes a second run a no-op.
func configureIface(c ipConfig, e netEnv) error {
	dev, err := findIface(c.device, e)
	if err != nil {
		return err
	}
	idx, err := ifIndex(dev)
	if err != nil {
		return fmt.Errorf("interface %s: %w", dev, err)
	}
	nl, err := dialRtnl()
	if err != nil {
		return err
	}
	defer nl.Close()
	if err := nl.linkUp(dev, idx); err != nil {
		return err
	}
	brd, _ := c.broadcast()
	if err := nl.addAddr(dev, idx, c.client, c.prefix, brd); err != nil {
		return err
	}
	if c.gateway.IsValid() {
		if err := nl.defaultRoute(dev, idx, c.gateway); err != nil {
			return err
		}
	}
	e.logf("%s is %v/%d%s", dev, c.client, c.prefix, map[bool]string{true: " via " + c.gateway.String(), false: ""}[c.gateway.IsValid()])
	return nil
}

// findIface waits for the named interface, or without a name for the first
// one in name order that is backed by a device (lo and sit0 are not). After
// the first miss it asks for virtio_net to be loaded.
func findIface(name string, e netEnv) (string, error) {
	deadline := time.Now().Add(ifaceWait)
	loaded := false
	for {
		if name != "" {
			if _, err := os.Stat(filepath.Join(e.sys, "class/net", name)); err == nil {
				return name, nil
			}
		} else {
			ents, _ := os.ReadDir(filepath.Join(e.sys, "class/net"))
			names := make([]string, 0, len(ents))
			for _, d := range ents {
				names = append(names, d.Name())
			}
			sort.Strings(names)
			for _, n := range names {
				if _, err := os.Stat(filepath.Join(e.sys, "class/net", n, "device")); err == nil && n != "lo" {
					return n, nil
				}
			}
		}
		if time.Now().After(deadline) {
			if name == "" {
				return "", fmt.Errorf("no network interface under %s/class/net after %v", e.sys, ifaceWait)
			}
			return "", fmt.Errorf("no interface %s under %s/class/net after %v", name, e.sys, ifaceWait)
		}
		if !loaded {
			loaded = true
			e.modprobe("virtio_net")
		}
		e.sleep(200 * time.Millisecond)
	}
}

// setHostname sets the kernel's hostname and /etc/hostname.
func setHostname(name, root string) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("sethostname %q: %w", name, err)
	}
	return replaceFile(filepath.Join(root, "etc/hostname"), []byte(name+"\n"), 0o644)
}

// replaceFile writes p through a temporary file and a rename, so that no
// reader sees half of it, replacing a symlink rather than following it:
// systemd-resolved's /etc/resolv.conf link points into /run.
func replaceFile(p string, data []byte, mode os.FileMode) error {
	tmp := p + ".ext4pack-tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// bringUpLo sets lo up; the kernel gives it 127.0.0.1/8 by itself.
func bringUpLo() error {
	idx, err := ifIndex("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	nl, err := dialRtnl()
	if err != nil {
		return err
	}
	defer nl.Close()
	return nl.linkUp("lo", idx)
}

// networkTool is `ext4pack-init network`: ip= from the command line file,
// applied as PID 1 applies it.
func networkTool(cmdlineFile, sys string, stderr io.Writer) int {
	logf := func(f string, a ...any) { fmt.Fprintf(stderr, "ext4pack-init network: "+f+"\n", a...) }
	b, err := os.ReadFile(cmdlineFile)
	if err != nil {
		logf("%v", err)
		return 1
	}
	value, ok := ipArgument(string(b))
	if !ok {
		logf("no ip= on the kernel command line; nothing to do")
		return 0
	}
	c, err := parseIP(value)
	if err != nil {
		logf("%v", err)
		return 1
	}
	if !c.static {
		logf("ip=%s leaves configuration to the kernel; nothing to do", value)
		return 0
	}
	e := netEnv{sys: sys, root: "/", logf: logf, modprobe: func(string) {}, sleep: time.Sleep}
	if err := applyIP(c, e); err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}
