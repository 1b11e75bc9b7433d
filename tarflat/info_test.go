package tarflat

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
)

// elfFile returns the start of an ELF file: a header for class (1 or 2),
// byte order data (1 LE, 2 BE), e_type and e_machine, then some code.
func elfFile(class, data byte, typ elf.Type, m elf.Machine) []byte {
	b := make([]byte, 64, 200)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = class, data, 1
	var bo binary.ByteOrder = binary.LittleEndian
	if data == 2 {
		bo = binary.BigEndian
	}
	bo.PutUint16(b[16:], uint16(typ))
	bo.PutUint16(b[18:], uint16(m))
	return append(b, bytes.Repeat([]byte{0x90}, 100)...)
}

var (
	x86     = elfFile(2, 1, elf.ET_DYN, elf.EM_X86_64)
	arm64   = elfFile(2, 1, elf.ET_DYN, elf.EM_AARCH64)
	riscv   = elfFile(2, 1, elf.ET_EXEC, elf.EM_RISCV)
	ppc64be = elfFile(2, 2, elf.ET_EXEC, elf.EM_PPC64)
	sparc   = elfFile(2, 2, elf.ET_EXEC, elf.EM_SPARCV9)
	libOnly = elfFile(2, 1, elf.ET_REL, elf.EM_X86_64)
)

// copyTar runs Copy on entries into a scratch image and returns its Info.
func copyTar(t *testing.T, entries ...tarEntry) Info {
	t.Helper()
	in, _ := writeTar(t, entries...)
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ext4w.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(in))
	defer r.Close()
	info, err := Copy(w, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return info
}

func dir(name string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}
func file(name string, mode int64, data []byte) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, data: data}
}
func symlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}
func hardlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}}
}
func whiteout(name string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg}}
}

// TestInfo checks the defaults Copy reads from the tar: the distro from
// os-release, the arch from /bin/sh's target or /usr/bin, and systemd.
func TestInfo(t *testing.T) {
	osr := func(id string) []byte { return []byte("NAME=\"X\"\n" + id + "\nVERSION_ID=1\n") }
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		want    Info
	}{
		{"debian merged-usr", []tarEntry{
			symlink("bin", "usr/bin"), symlink("lib", "usr/lib"),
			dir("usr/bin"), file("usr/bin/dash", 0o755, x86), symlink("usr/bin/sh", "dash"),
			file("usr/lib/os-release", 0o644, osr("ID=debian")), symlink("etc/os-release", "../usr/lib/os-release"),
			file("usr/lib/systemd/systemd", 0o755, x86),
		}, Info{Distro: "debian", Arch: "x86_64", ArchFrom: "/usr/bin/dash", HasSystemd: true}},
		{"alpine busybox", []tarEntry{
			file("bin/busybox", 0o755, arm64), symlink("bin/sh", "/bin/busybox"),
			file("etc/os-release", 0o644, osr(`ID="alpine"`)),
			file("usr/lib/os-release", 0o644, osr("ID=ignored")),
		}, Info{Distro: "alpine", Arch: "aarch64", ArchFrom: "/bin/busybox"}},
		{"only usr/lib/os-release", []tarEntry{
			file("usr/lib/os-release", 0o644, osr("ID='fedora'")),
			file("lib/systemd/systemd", 0o755, x86),
		}, Info{Distro: "fedora", HasSystemd: true}},
		{"dangling etc/os-release falls back", []tarEntry{
			symlink("etc/os-release", "../usr/share/nothing"),
			file("usr/lib/os-release", 0o644, osr("ID=fallback")),
		}, Info{Distro: "fallback"}},
		{"os-release without ID", []tarEntry{file("etc/os-release", 0o644, []byte("NAME=Thing\n"))}, Info{Distro: "linux"}},
		{"os-release escapes, last ID wins", []tarEntry{file("etc/os-release", 0o644, []byte("ID=first\n  ID=\"a\\\"b\"\n"))}, Info{Distro: `a"b`}},
		{"sh is a script: first ELF under /usr/bin", []tarEntry{
			file("bin/sh", 0o755, []byte("#!/bin/busybox\n")),
			file("usr/bin/a-lib", 0o755, libOnly), file("usr/bin/noexec", 0o644, x86),
			file("usr/bin/zz", 0o755, riscv), file("usr/bin/aa", 0o755, arm64),
		}, Info{Arch: "riscv64", ArchFrom: "/usr/bin/zz"}},
		{"sh through a relative chain and alternatives", []tarEntry{
			symlink("bin", "usr/bin"), symlink("usr/bin/sh", "../../etc/alternatives/sh"),
			symlink("etc/alternatives/sh", "/usr/bin/bash"), file("usr/bin/bash", 0o755, ppc64be),
		}, Info{Arch: "ppc64", ArchFrom: "/usr/bin/bash"}},
		{"hardlinked sh", []tarEntry{
			file("bin/bash", 0o755, sparc), hardlink("bin/sh", "bin/bash"),
		}, Info{Arch: "EM_SPARCV9", ArchFrom: "/bin/sh"}},
		{"a later entry replaces sh", []tarEntry{
			file("bin/sh", 0o755, x86), file("bin/sh", 0o755, arm64),
		}, Info{Arch: "aarch64", ArchFrom: "/bin/sh"}},
		{"a whiteout removes os-release and sh", []tarEntry{
			file("etc/os-release", 0o644, osr("ID=gone")), whiteout("etc/.wh.os-release"),
			file("bin/sh", 0o755, x86), whiteout("bin/.wh.sh"),
		}, Info{}},
		{"a directory replaced by a file drops what was under it", []tarEntry{
			file("usr/lib/systemd/systemd", 0o755, x86), file("usr/lib/os-release", 0o644, osr("ID=x")),
			file("usr/bin/x", 0o755, x86),
			file("usr/lib", 0o644, []byte("not a dir any more")), whiteout("usr/.wh.bin"),
			dir("usr/lib"), dir("usr/bin"),
		}, Info{}},
		{"a directory over a directory keeps what is under it", []tarEntry{
			file("usr/lib/systemd/systemd", 0o755, x86), dir("usr/lib/"), dir("usr"), dir("./"),
		}, Info{HasSystemd: true}},
		{"symlink loop", []tarEntry{symlink("bin/sh", "loop"), symlink("bin/loop", "sh")}, Info{}},
		{"no ELF at all", []tarEntry{file("usr/bin/script", 0o755, []byte("#!/bin/sh\n"))}, Info{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := copyTar(t, tc.entries...)
			got.Entries, got.Bytes = 0, 0
			// TestInitSystem covers these.
			got.Init, got.NetTool = InitSystem{}, ""
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestInfoCounts(t *testing.T) {
	got := copyTar(t, dir("etc"), file("etc/a", 0o644, []byte("12345")), file("etc/b", 0o644, x86))
	if got.Entries != 3 || got.Bytes != int64(5+len(x86)) {
		t.Errorf("got %d entries, %d bytes", got.Entries, got.Bytes)
	}
}
