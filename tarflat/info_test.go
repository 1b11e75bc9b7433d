package tarflat

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/tartest"
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
	in := tartest.Bytes(t, entries...)
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

// TestInfo checks the defaults Copy reads from the tar: the distro from
// os-release, the arch from /bin/sh's target or /usr/bin, and systemd.
func TestInfo(t *testing.T) {
	osr := func(id string) []byte { return []byte("NAME=\"X\"\n" + id + "\nVERSION_ID=1\n") }
	for _, tc := range []struct {
		name    string
		entries []tartest.Entry
		want    Info
	}{
		{"debian merged-usr", []tartest.Entry{
			tartest.Symlink("bin", "usr/bin"), tartest.Symlink("lib", "usr/lib"),
			tartest.Dir("usr/bin", 0o755), tartest.File("usr/bin/dash", 0o755, x86), tartest.Symlink("usr/bin/sh", "dash"),
			tartest.File("usr/lib/os-release", 0o644, osr("ID=debian")), tartest.Symlink("etc/os-release", "../usr/lib/os-release"),
			tartest.File("usr/lib/systemd/systemd", 0o755, x86),
		}, Info{Distro: "debian", Arch: "x86_64", ArchFrom: "/usr/bin/dash", HasSystemd: true}},
		{"alpine busybox", []tartest.Entry{
			tartest.File("bin/busybox", 0o755, arm64), tartest.Symlink("bin/sh", "/bin/busybox"),
			tartest.File("etc/os-release", 0o644, osr(`ID="alpine"`)),
			tartest.File("usr/lib/os-release", 0o644, osr("ID=ignored")),
		}, Info{Distro: "alpine", Arch: "aarch64", ArchFrom: "/bin/busybox"}},
		{"only usr/lib/os-release", []tartest.Entry{
			tartest.File("usr/lib/os-release", 0o644, osr("ID='fedora'")),
			tartest.File("lib/systemd/systemd", 0o755, x86),
		}, Info{Distro: "fedora", HasSystemd: true}},
		{"dangling etc/os-release falls back", []tartest.Entry{
			tartest.Symlink("etc/os-release", "../usr/share/nothing"),
			tartest.File("usr/lib/os-release", 0o644, osr("ID=fallback")),
		}, Info{Distro: "fallback"}},
		{"os-release without ID", []tartest.Entry{tartest.File("etc/os-release", 0o644, "NAME=Thing\n")}, Info{Distro: "linux"}},
		{"os-release escapes, last ID wins", []tartest.Entry{tartest.File("etc/os-release", 0o644, "ID=first\n  ID=\"a\\\"b\"\n")}, Info{Distro: `a"b`}},
		{"sh is a script: first ELF under /usr/bin", []tartest.Entry{
			tartest.File("bin/sh", 0o755, "#!/bin/busybox\n"),
			tartest.File("usr/bin/a-lib", 0o755, libOnly), tartest.File("usr/bin/noexec", 0o644, x86),
			tartest.File("usr/bin/zz", 0o755, riscv), tartest.File("usr/bin/aa", 0o755, arm64),
		}, Info{Arch: "riscv64", ArchFrom: "/usr/bin/zz"}},
		{"sh through a relative chain and alternatives", []tartest.Entry{
			tartest.Symlink("bin", "usr/bin"), tartest.Symlink("usr/bin/sh", "../../etc/alternatives/sh"),
			tartest.Symlink("etc/alternatives/sh", "/usr/bin/bash"), tartest.File("usr/bin/bash", 0o755, ppc64be),
		}, Info{Arch: "ppc64", ArchFrom: "/usr/bin/bash"}},
		{"hardlinked sh", []tartest.Entry{
			tartest.File("bin/bash", 0o755, sparc), tartest.Hardlink("bin/sh", "bin/bash"),
		}, Info{Arch: "EM_SPARCV9", ArchFrom: "/bin/sh"}},
		{"a later entry replaces sh", []tartest.Entry{
			tartest.File("bin/sh", 0o755, x86), tartest.File("bin/sh", 0o755, arm64),
		}, Info{Arch: "aarch64", ArchFrom: "/bin/sh"}},
		{"a whiteout removes os-release and sh", []tartest.Entry{
			tartest.File("etc/os-release", 0o644, osr("ID=gone")), tartest.Whiteout("etc/.wh.os-release"),
			tartest.File("bin/sh", 0o755, x86), tartest.Whiteout("bin/.wh.sh"),
		}, Info{}},
		{"a directory replaced by a file drops what was under it", []tartest.Entry{
			tartest.File("usr/lib/systemd/systemd", 0o755, x86), tartest.File("usr/lib/os-release", 0o644, osr("ID=x")),
			tartest.File("usr/bin/x", 0o755, x86),
			tartest.File("usr/lib", 0o644, "not a dir any more"), tartest.Whiteout("usr/.wh.bin"),
			tartest.Dir("usr/lib", 0o755), tartest.Dir("usr/bin", 0o755),
		}, Info{}},
		{"a directory over a directory keeps what is under it", []tartest.Entry{
			tartest.File("usr/lib/systemd/systemd", 0o755, x86), tartest.Dir("usr/lib/", 0o755), tartest.Dir("usr", 0o755), tartest.Dir("./", 0o755),
		}, Info{HasSystemd: true}},
		{"symlink loop", []tartest.Entry{tartest.Symlink("bin/sh", "loop"), tartest.Symlink("bin/loop", "sh")}, Info{}},
		{"no ELF at all", []tartest.Entry{tartest.File("usr/bin/script", 0o755, "#!/bin/sh\n")}, Info{}},
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
	got := copyTar(t, tartest.Dir("etc", 0o755), tartest.File("etc/a", 0o644, "12345"), tartest.File("etc/b", 0o644, x86))
	if got.Entries != 3 || got.Bytes != int64(5+len(x86)) {
		t.Errorf("got %d entries, %d bytes", got.Entries, got.Bytes)
	}
}
