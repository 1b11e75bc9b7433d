package tarflat

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"path"
	"strings"

	"github.com/ext4pack/ext4pack/ext4w"
)

// Info is what Copy learnt about the tar: counts, and the defaults a
// bundle takes from the tar itself (SPEC "CLI": --distro and --arch).
type Info struct {
	Entries int64 // tar entries read, whiteouts included
	Bytes   int64 // regular files' content bytes, sparse holes included

	// Distro is the ID= of the image's os-release: /etc/os-release, or
	// /usr/lib/os-release where the former does not exist, both resolved
	// through symlinks as the booted system would. An os-release without
	// an ID line gives "linux", os-release(5)'s default. Empty when there
	// is no readable os-release.
	Distro string

	// Arch is the machine (e_machine) of /bin/sh's target, else of the
	// first ELF executable under /usr/bin in tar order: "x86_64" or
	// "aarch64"; for others the name uname -m gives ("riscv64", "i386",
	// "arm", "ppc64le", "s390x", ...), else debug/elf's ("EM_SPARCV9").
	// Empty when the tar has no ELF executable in either place.
	Arch string
	// ArchFrom is the absolute path of the executable Arch came from, for
	// messages ("/usr/bin/dash").
	ArchFrom string

	// HasSystemd reports whether /lib/systemd/systemd or
	// /usr/lib/systemd/systemd exists, through symlinks (/lib -> usr/lib).
	HasSystemd bool

	// Init is the init system the image boots: what /sbin/init is.
	Init InitSystem

	// NetTool is what the guest's network bootstrap can configure an
	// interface with: "ip" (iproute2's, or busybox's as a link), else
	// "busybox", found in /usr/sbin, /usr/bin, /sbin or /bin through
	// symlinks; "" when there is neither.
	NetTool string
}

// elfHeadSize is how much of each regular file is looked at: the ELF
// header (52 bytes for 32-bit, 64 for 64-bit), never more.
const elfHeadSize = 64

// maxKept is the largest file whose content Info reads (an os-release's
// ID, an inittab's lines). Real ones are under 4 KiB; the cap keeps a
// hostile tar from making us buffer much.
const maxKept = 64 << 10

// elfInfo is what the ELF header of an executable says about its machine.
type elfInfo struct {
	ok      bool // an ELF executable: ET_EXEC or ET_DYN with an x bit
	machine uint16
	class   byte // ELFCLASS32 (1) or ELFCLASS64 (2)
	data    byte // ELFDATA2LSB (1) or ELFDATA2MSB (2)
}

// sniffELF reads an ELF header (the System V gABI, "ELF Header"): the
// 4-byte magic, e_ident[EI_CLASS] and [EI_DATA] at 4 and 5, then e_type
// at 16 and e_machine at 18 in the file's byte order. PIE executables are
// ET_DYN, like shared libraries; the mode's x bits tell them apart well
// enough under /usr/bin.
func sniffELF(head []byte, mode uint32) elfInfo {
	if len(head) < 20 || !bytes.HasPrefix(head, []byte("\x7fELF")) || mode&0o111 == 0 {
		return elfInfo{}
	}
	class, data := head[4], head[5]
	var bo binary.ByteOrder
	switch data {
	case 1:
		bo = binary.LittleEndian
	case 2:
		bo = binary.BigEndian
	default:
		return elfInfo{}
	}
	if class != 1 && class != 2 {
		return elfInfo{}
	}
	switch elf.Type(bo.Uint16(head[16:])) {
	case elf.ET_EXEC, elf.ET_DYN:
	default:
		return elfInfo{}
	}
	return elfInfo{ok: true, machine: bo.Uint16(head[18:]), class: class, data: data}
}

// archName names e's machine as uname -m does for the common ones, and
// by its ELF constant otherwise.
func archName(e elfInfo) string {
	is64, le := e.class == 2, e.data == 1
	pick := func(cond bool, a, b string) string {
		if cond {
			return a
		}
		return b
	}
	switch elf.Machine(e.machine) {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_386:
		return "i386"
	case elf.EM_ARM:
		return "arm"
	case elf.EM_RISCV:
		return pick(is64, "riscv64", "riscv32")
	case elf.EM_PPC64:
		return pick(le, "ppc64le", "ppc64")
	case elf.EM_PPC:
		return "ppc"
	case elf.EM_S390:
		return pick(is64, "s390x", "s390")
	case elf.EM_MIPS:
		return pick(is64, "mips64", "mips") + pick(le, "el", "")
	case elf.EM_LOONGARCH:
		return "loongarch64"
	}
	name := elf.Machine(e.machine).String()
	if !strings.HasPrefix(name, "EM_") {
		name = fmt.Sprintf("ELF machine %d", e.machine)
	}
	return name
}

// osReleaseID returns the ID= value of an os-release file (os-release(5):
// shell-style KEY=VALUE lines, values optionally in single or double
// quotes, with backslash escapes inside double quotes). As in a shell,
// the last assignment wins.
func osReleaseID(content []byte) (id string, found bool) {
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(nil, maxKept+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		v, ok := strings.CutPrefix(line, "ID=")
		if !ok {
			continue
		}
		id, found = unquoteShell(v), true
	}
	return id, found
}

func unquoteShell(v string) string {
	switch {
	case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
		return v[1 : len(v)-1]
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		v = v[1 : len(v)-1]
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\\\"$`", v[i+1]) >= 0 {
				i++
			}
			b.WriteByte(v[i])
		}
		return b.String()
	}
	return v
}

// keepContent reports whether a regular file's content is worth keeping
// for Info: any small file named os-release (Distro), inittab or rcS
// (Init), whatever its directory, since /etc/os-release and /etc/inittab
// may be symlinks to anywhere and the tar's order does not tell yet which
// one the image ends up using.
func keepContent(name string, size int64) bool {
	if size > maxKept {
		return false
	}
	switch path.Base(name) {
	case "os-release", "inittab", "rcS":
		return true
	}
	return false
}

// content returns the kept content of the regular file name resolves to,
// and whether there is one.
func (c *copier) content(name string) ([]byte, bool) {
	_, st, err := c.w.Resolve(name)
	if err != nil || st.Type != ext4w.TypeRegular {
		return nil, false
	}
	b, ok := c.kept[st.ID]
	return b, ok
}

// finish answers Info's questions from the image's namespace, once the
// tar is read, resolving symlinks as the booted system would.
func (c *copier) finish() Info {
	in := c.info
	for _, cand := range []string{"etc/os-release", "usr/lib/os-release"} {
		_, st, err := c.w.Resolve(cand)
		if err != nil {
			continue
		}
		// os-release(5): the fallback is read only if /etc/os-release
		// does not exist, not when it is unreadable.
		if rel, ok := c.kept[st.ID]; ok && st.Type == ext4w.TypeRegular {
			id, has := osReleaseID(rel)
			in.Distro = id
			if !has {
				in.Distro = "linux"
			}
		}
		break
	}

	if p, st, err := c.w.Resolve("bin/sh"); err == nil && st.Type == ext4w.TypeRegular && c.elves[st.ID].ok {
		in.Arch, in.ArchFrom = archName(c.elves[st.ID]), "/"+p
	} else {
		for _, x := range c.usrBin {
			// The first in tar order that is still there as it was made.
			if st, err := c.w.Lstat(x.name); err == nil && st.ID == x.id {
				in.Arch, in.ArchFrom = archName(c.elves[x.id]), "/"+x.name
				break
			}
		}
	}

	for _, cand := range []string{"lib/systemd/systemd", "usr/lib/systemd/systemd"} {
		if _, st, err := c.w.Resolve(cand); err == nil && st.Type == ext4w.TypeRegular {
			in.HasSystemd = true
		}
	}
	in.Init = c.initSystem()
	for _, tool := range []string{"ip", "busybox"} {
		for _, dir := range []string{"usr/sbin", "usr/bin", "sbin", "bin"} {
			if _, st, err := c.w.Resolve(dir + "/" + tool); err == nil && st.Type == ext4w.TypeRegular && in.NetTool == "" {
				in.NetTool = tool
			}
		}
	}
	return in
}
