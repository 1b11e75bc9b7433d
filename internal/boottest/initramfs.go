package boottest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// initramfsModules are the modules the guest needs that Debian's cloud
// kernel does not build in: the network card's driver, and AF_VSOCK with its
// loopback transport, through which the checker talks to the agent (the
// host has no vhost-vsock), and the virtio transport an agent would use
// under Firecracker. Their dependencies come from modules.dep.
var initramfsModules = []string{"virtio_pci", "virtio_net", "vsock", "vmw_vsock_virtio_transport", "vsock_loopback"}

// moduleOrder returns the .ko paths (relative to the module tree) to load
// for names, every module after the ones it depends on, each once; names
// the kernel builds in (modules.builtin) are left out.
func moduleOrder(modDir string, names []string) ([]string, error) {
	dep, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	builtin, _ := os.ReadFile(filepath.Join(modDir, "modules.builtin"))
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(string(dep), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[moduleName(mod)] = mod
	}
	isBuiltin := map[string]bool{}
	for _, l := range strings.Fields(string(builtin)) {
		isBuiltin[moduleName(l)] = true
	}
	var order []string
	seen := map[string]bool{}
	var visit func(mod string, depth int) error
	visit = func(mod string, depth int) error {
		if seen[mod] {
			return nil
		}
		if depth > 64 {
			return fmt.Errorf("modules.dep: a cycle through %s", mod)
		}
		seen[mod] = true
		// modules.dep lists a module's dependencies, each of which it
		// also lists with its own; loading them last first is modprobe's
		// order.
		d := deps[mod]
		for i := len(d) - 1; i >= 0; i-- {
			if err := visit(d[i], depth+1); err != nil {
				return err
			}
		}
		order = append(order, mod)
		return nil
	}
	for _, n := range names {
		mod, ok := byName[n]
		switch {
		case ok:
			if err := visit(mod, 0); err != nil {
				return nil, err
			}
		case isBuiltin[n]:
		default:
			return nil, fmt.Errorf("%s: no module %s, and the kernel does not build it in", modDir, n)
		}
	}
	return order, nil
}

// moduleName is a module's name from its path: kernel/net/vmw_vsock/vsock.ko -> vsock.
func moduleName(p string) string {
	base := path.Base(p)
	for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"} {
		if strings.HasSuffix(base, ext) {
			return strings.ReplaceAll(strings.TrimSuffix(base, ext), "-", "_")
		}
	}
	return base
}

// buildInitramfs writes the test initramfs: a gzipped newc cpio holding
// /init (rdinit, static), the modules under /modules and their load order in
// /modules.order, /dev/console for the kernel to open, and /dev/null for the
// Go runtime to put on the descriptors the kernel leaves closed when it has
// no console to open.
func buildInitramfs(dst, initBin, modDir string) (size int64, err error) {
	order, err := moduleOrder(modDir, initramfsModules)
	if err != nil {
		return 0, err
	}
	var c cpioWriter
	c.dir("dev", 0o755)
	c.node("dev/console", 0o600, 5, 1)
	c.node("dev/null", 0o666, 1, 3)
	c.dir("modules", 0o755)
	var names []string
	for _, mod := range order {
		b, err := os.ReadFile(filepath.Join(modDir, mod))
		if err != nil {
			return 0, err
		}
		name := path.Base(mod)
		c.file("modules/"+name, 0o644, b)
		names = append(names, name)
	}
	c.file("modules.order", 0o644, []byte(strings.Join(names, "\n")+"\n"))
	b, err := os.ReadFile(initBin)
	if err != nil {
		return 0, err
	}
	c.file("init", 0o755, b)
	c.trailer()
	if err := writeGzip(dst, c.buf.Bytes()); err != nil {
		return 0, err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// writeGzip writes b, gzipped, to dst.
func writeGzip(dst string, b []byte) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	zw := gzip.NewWriter(bw)
	if _, err := zw.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpioWriter writes the "newc" cpio format the kernel unpacks
// (Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte
// ASCII header of 13 eight-digit hex fields after the magic 070701, the
// name with its NUL, padding to 4 bytes, the data, padding to 4 bytes.
type cpioWriter struct {
	buf bytes.Buffer
	ino int
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFCHR = 0o020000
)

func (c *cpioWriter) entry(name string, mode uint32, major, minor int, data []byte) {
	c.ino++
	nlink := 1
	if mode&sIFDIR != 0 {
		nlink = 2
	}
	fmt.Fprintf(&c.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(name)+1, 0)
	c.buf.WriteString(name)
	c.buf.WriteByte(0)
	c.pad()
	c.buf.Write(data)
	c.pad()
}

func (c *cpioWriter) pad() {
	for c.buf.Len()%4 != 0 {
		c.buf.WriteByte(0)
	}
}

func (c *cpioWriter) dir(name string, perm uint32)            { c.entry(name, sIFDIR|perm, 0, 0, nil) }
func (c *cpioWriter) file(name string, perm uint32, b []byte) { c.entry(name, sIFREG|perm, 0, 0, b) }
func (c *cpioWriter) node(name string, perm uint32, major, minor int) {
	c.entry(name, sIFCHR|perm, major, minor, nil)
}
func (c *cpioWriter) trailer() { c.entry("TRAILER!!!", 0, 0, 0, nil) }
