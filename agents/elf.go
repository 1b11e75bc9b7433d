package agents

import (
	"bytes"
	"debug/elf"
	"fmt"
)

// machines maps an Options.Arch to the ELF e_machine its executables carry.
var machines = map[string]elf.Machine{
	ArchX86_64:  elf.EM_X86_64,
	ArchAarch64: elf.EM_AARCH64,
}

// CheckAgent reports whether bin can serve as the vsock agent of an arch
// guest: a 64-bit little-endian Linux ELF executable for that arch, and
// static, since the guest's libc is unknown. A wrong --agent-bin then fails
// make-bundle instead of a guest's boot.
func CheckAgent(bin []byte, arch string) error { return checkBinary("agent", bin, arch) }

// checkBinary is CheckAgent for the guest binary named what.
func checkBinary(what string, bin []byte, arch string) error {
	want, ok := machines[arch]
	if !ok {
		return fmt.Errorf("agents: unknown arch %q (want %s or %s)", arch, ArchX86_64, ArchAarch64)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("agents: %s for %s is not an ELF file: %w", what, arch, err)
	}
	switch {
	case f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB:
		return fmt.Errorf("agents: %s for %s is %v %v, want 64-bit little-endian", what, arch, f.Class, f.Data)
	case f.Machine != want:
		return fmt.Errorf("agents: %s for %s is built for %v, want %v", what, arch, f.Machine, want)
	// Go writes ELFOSABI_NONE for Linux; GNU tools may write ELFOSABI_LINUX.
	case f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX:
		return fmt.Errorf("agents: %s for %s is built for %v, want Linux", what, arch, f.OSABI)
	// ET_DYN without an interpreter is a static PIE.
	case f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN:
		return fmt.Errorf("agents: %s for %s is an %v, want an executable", what, arch, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("agents: %s for %s is dynamically linked (it has PT_INTERP); build it with CGO_ENABLED=0", what, arch)
		}
	}
	return nil
}
