package boottest

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// busybox unpacks Debian's busybox-static for arch into dir and returns the
// binary's path.
func busybox(ctx context.Context, cacheDir, arch, dir string, logf func(string, ...any)) (string, error) {
	deb, err := fetchDeb(ctx, cacheDir, "busybox-static:"+debArch[arch], logf)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "busybox-"+arch)
	if _, err := runTool(ctx, toolTimeout, runOpts{}, "dpkg-deb", "-x", deb, dst); err != nil {
		return "", err
	}
	return filepath.Join(dst, "bin", "busybox"), nil
}

// busyboxApplets lists busybox's applets as paths ("sbin/init"), asked of
// the host's x86_64 build of the same package: the arm64 one has the same
// configuration and cannot run here.
func busyboxApplets(ctx context.Context, hostBusybox string) ([]string, error) {
	out, err := runTool(ctx, toolTimeout, runOpts{}, hostBusybox, "--list-full")
	if err != nil {
		return nil, err
	}
	var applets []string
	for _, l := range strings.Fields(string(out)) {
		if l != "bin/busybox" {
			applets = append(applets, l)
		}
	}
	if len(applets) < 100 {
		return nil, fmt.Errorf("busybox --list-full gave %d applets", len(applets))
	}
	return applets, nil
}

// writeBase writes a base rootfs tar made of entries only.
func writeBase(dst string, entries []addEntry) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	c := newTarComposer(bw)
	for _, e := range entries {
		if err := c.addEntry(e); err != nil {
			f.Close()
			return err
		}
	}
	if err := c.Close(); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// skeleton is the directories every composed rootfs has.
func skeleton() []addEntry {
	var e []addEntry
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin", 0o755}, {"sbin", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755}, {"etc", 0o755}, {"proc", 0o555},
		{"sys", 0o555}, {"dev", 0o755}, {"run", 0o755}, {"tmp", 0o1777}, {"root", 0o700}, {"var/lib", 0o755}} {
		e = append(e, addEntry{name: d.name, typ: tar.TypeDir, mode: d.mode})
	}
	return e
}

// busyboxBase is Alpine's shape made of Debian's busybox-static: the binary,
// a link for every applet (as `busybox --install -s` makes them), Alpine's
// inittab, whose OpenRC is not there, and a passwd with nobody.
func busyboxBase(dst, busyboxBin string, applets []string) error {
	bin, err := os.ReadFile(busyboxBin)
	if err != nil {
		return err
	}
	e := skeleton()
	e = append(e, addEntry{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, data: bin})
	for _, a := range applets {
		e = append(e, addEntry{name: a, typ: tar.TypeSymlink, link: "/bin/busybox"})
	}
	e = append(e,
		addEntry{name: "etc/inittab", typ: tar.TypeReg, mode: 0o644, data: alpineInittab},
		addEntry{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644,
			data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n")},
		addEntry{name: "etc/group", typ: tar.TypeReg, mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\n")},
		addEntry{name: "etc/hostname", typ: tar.TypeReg, mode: 0o644, data: []byte("localhost\n")},
	)
	return writeBase(dst, e)
}

// distrolessBase has no shell and no init: a passwd and a group with
// distroless's nonroot user, and the directories. The checker, added to
// every guest, is its only program.
func distrolessBase(dst string) error {
	e := skeleton()
	e = append(e,
		addEntry{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		addEntry{name: "etc/group", typ: tar.TypeReg, mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
		addEntry{name: "home/nonroot", typ: tar.TypeDir, mode: 0o700, uid: 65532, gid: 65532},
	)
	return writeBase(dst, e)
}
