package agents

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fakeAgent returns the smallest ELF file CheckAgent looks at: a header and,
// with interp, a PT_INTERP program header. It is not runnable; Files only
// checks and copies the agent.
func fakeAgent(t *testing.T, machine elf.Machine, typ elf.Type, osabi elf.OSABI, interp bool) []byte {
	t.Helper()
	hdr := elf.Header64{
		Type:      uint16(typ),
		Machine:   uint16(machine),
		Version:   uint32(elf.EV_CURRENT),
		Ehsize:    64,
		Phentsize: 56,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	hdr.Ident[elf.EI_OSABI] = byte(osabi)
	var progs []elf.Prog64
	if interp {
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP)})
		hdr.Phoff = 64
		hdr.Phnum = uint16(len(progs))
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, hdr); err != nil {
		t.Fatal(err)
	}
	if err := binary.Write(&buf, binary.LittleEndian, progs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func staticAgent(t *testing.T, arch string) []byte {
	return fakeAgent(t, machines[arch], elf.ET_EXEC, elf.ELFOSABI_NONE, false)
}

// entry is a File without its contents, for comparing layouts.
type entry struct {
	Path     string
	Type     FileType
	Mode     uint32
	Uid, Gid uint32
	Target   string
}

// specLayout is SPEC.md's "Guest files" table, sorted by path.
var specLayout = []entry{
	{"/etc/modules-load.d/banger-vsock.conf", TypeRegular, 0o644, 0, 0, ""},
	{"/etc/systemd/system/banger-first-boot.service", TypeRegular, 0o644, 0, 0, ""},
	{"/etc/systemd/system/banger-network.service", TypeRegular, 0o644, 0, 0, ""},
	{"/etc/systemd/system/banger-vsock-agent.service", TypeRegular, 0o644, 0, 0, ""},
	{"/etc/systemd/system/multi-user.target.wants/banger-first-boot.service", TypeSymlink, 0o777, 0, 0,
		"/etc/systemd/system/banger-first-boot.service"},
	{"/etc/systemd/system/multi-user.target.wants/banger-network.service", TypeSymlink, 0o777, 0, 0,
		"/etc/systemd/system/banger-network.service"},
	{"/etc/systemd/system/multi-user.target.wants/banger-vsock-agent.service", TypeSymlink, 0o777, 0, 0,
		"/etc/systemd/system/banger-vsock-agent.service"},
	{"/usr/local/bin/banger-vsock-agent", TypeRegular, 0o755, 0, 0, ""},
	{"/usr/local/libexec/banger-first-boot", TypeRegular, 0o755, 0, 0, ""},
	{"/usr/local/libexec/banger-network-bootstrap", TypeRegular, 0o755, 0, 0, ""},
	{"/var/lib/banger/first-boot-pending", TypeRegular, 0o644, 0, 0, ""},
}

func byPath(files []File) map[string]File {
	m := make(map[string]File)
	for _, f := range files {
		m[f.Path] = f
	}
	return m
}

func TestFiles(t *testing.T) {
	tests := []struct {
		arch, distro string
		port, want   uint32
	}{
		{ArchX86_64, "debian", 0, DefaultVsockPort},
		{ArchAarch64, "ubuntu", 0, DefaultVsockPort},
		{ArchX86_64, "", 52000, 52000},
		{ArchAarch64, "alpine", 1, 1},
		{ArchX86_64, "fedora", maxVsockPort, maxVsockPort},
	}
	for _, tc := range tests {
		t.Run(tc.arch+"/"+tc.distro, func(t *testing.T) {
			bin := staticAgent(t, tc.arch)
			files, err := Files(Options{Init: systemd, HasNetTool: true, NoGrow: true, Arch: tc.arch, Distro: tc.distro, AgentBin: bin, VsockPort: tc.port})
			if err != nil {
				t.Fatal(err)
			}
			var got []entry
			for _, f := range files {
				got = append(got, entry{f.Path, f.Type, f.Mode, f.Uid, f.Gid, f.Target})
				if f.Type == TypeSymlink && f.Data != nil {
					t.Errorf("%s: symlink with data", f.Path)
				}
			}
			if !slices.Equal(got, specLayout) {
				t.Errorf("layout:\ngot  %v\nwant %v", got, specLayout)
			}

			m := byPath(files)
			if !bytes.Equal(m[agentPath].Data, bin) {
				t.Errorf("agent data is not the AgentBin given")
			}
			if d := m[firstBootMarker].Data; d == nil || len(d) != 0 {
				t.Errorf("marker data %q, want empty", d)
			}
			unit := string(m[unitDir+"/"+agentUnit].Data)
			if want := "ExecStart=/usr/local/bin/banger-vsock-agent --port=" + strconv.FormatUint(uint64(tc.want), 10) + "\n"; !strings.Contains(unit, want) {
				t.Errorf("agent unit lacks %q:\n%s", want, unit)
			}
			for _, f := range files {
				if bytes.Contains(f.Data, []byte(vsockPortTemplate)) {
					t.Errorf("%s still holds %s", f.Path, vsockPortTemplate)
				}
			}
		})
	}
}

func TestFilesIsDeterministicAndOwnsItsData(t *testing.T) {
	bin := staticAgent(t, ArchAarch64)
	opts := Options{Init: systemd, HasNetTool: true, Arch: ArchAarch64, AgentBin: bin, InitBin: staticAgent(t, ArchAarch64)}
	a, err := Files(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Files(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two calls with the same options differ")
	}
	// A caller that edits what it got must not change the next answer or
	// its own AgentBin.
	for _, f := range a {
		for i := range f.Data {
			f.Data[i] ^= 0xff
		}
	}
	c, err := Files(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b, c) {
		t.Error("editing one answer changed the next")
	}
	if !bytes.Equal(bin, staticAgent(t, ArchAarch64)) {
		t.Error("editing the answer changed Options.AgentBin")
	}
}

func TestFilesErrors(t *testing.T) {
	x86 := staticAgent(t, ArchX86_64)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"empty arch", Options{Init: systemd, HasNetTool: true, AgentBin: x86}, `unknown arch ""`},
		{"alias arch", Options{Init: systemd, HasNetTool: true, Arch: "amd64", AgentBin: x86}, `unknown arch "amd64" (want x86_64 or aarch64)`},
		{"port any", Options{Init: systemd, HasNetTool: true, Arch: ArchX86_64, AgentBin: x86, VsockPort: 1<<32 - 1}, "vsock port 4294967295 is out of range"},
		{"wrong arch agent", Options{Init: systemd, HasNetTool: true, Arch: ArchAarch64, AgentBin: x86}, "agent for aarch64 is built for EM_X86_64, want EM_AARCH64"},
		{"empty agent", Options{Init: systemd, HasNetTool: true, Arch: ArchX86_64, AgentBin: []byte{}}, "not an ELF file"},
		{"script agent", Options{Init: systemd, HasNetTool: true, Arch: ArchX86_64, AgentBin: []byte("#!/bin/sh\n")}, "not an ELF file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Files(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "agents: ") {
				t.Errorf("err = %v, want one starting %q and containing %q", err, "agents: ", tc.want)
			}
			if files != nil {
				t.Errorf("files = %v alongside an error", files)
			}
		})
	}
}

func TestFilesWithoutEmbeddedAgents(t *testing.T) {
	if Embedded {
		t.Skip("this build embeds the agents")
	}
	_, err := Files(Options{Init: systemd, HasNetTool: true, NoGrow: true, Arch: ArchX86_64})
	if !errors.Is(err, ErrNoAgents) {
		t.Fatalf("err = %v, want ErrNoAgents", err)
	}
	for _, hint := range []string{"make build", "--agent-bin PATH"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("%q does not tell the user about %s", err, hint)
		}
	}
}

func TestCheckAgent(t *testing.T) {
	tests := []struct {
		name string
		arch string
		bin  []byte
		want string // "" for success
	}{
		{"x86_64 static", ArchX86_64, fakeAgent(t, elf.EM_X86_64, elf.ET_EXEC, elf.ELFOSABI_NONE, false), ""},
		{"aarch64 static", ArchAarch64, fakeAgent(t, elf.EM_AARCH64, elf.ET_EXEC, elf.ELFOSABI_NONE, false), ""},
		{"static PIE", ArchX86_64, fakeAgent(t, elf.EM_X86_64, elf.ET_DYN, elf.ELFOSABI_NONE, false), ""},
		{"GNU/Linux OSABI", ArchAarch64, fakeAgent(t, elf.EM_AARCH64, elf.ET_EXEC, elf.ELFOSABI_LINUX, false), ""},
		{"dynamic", ArchX86_64, fakeAgent(t, elf.EM_X86_64, elf.ET_EXEC, elf.ELFOSABI_NONE, true), "dynamically linked"},
		{"dynamic PIE", ArchAarch64, fakeAgent(t, elf.EM_AARCH64, elf.ET_DYN, elf.ELFOSABI_NONE, true), "dynamically linked"},
		{"arm64 for x86_64", ArchX86_64, fakeAgent(t, elf.EM_AARCH64, elf.ET_EXEC, elf.ELFOSABI_NONE, false), "want EM_X86_64"},
		{"riscv", ArchAarch64, fakeAgent(t, elf.EM_RISCV, elf.ET_EXEC, elf.ELFOSABI_NONE, false), "want EM_AARCH64"},
		{"FreeBSD", ArchX86_64, fakeAgent(t, elf.EM_X86_64, elf.ET_EXEC, elf.ELFOSABI_FREEBSD, false), "want Linux"},
		{"object file", ArchX86_64, fakeAgent(t, elf.EM_X86_64, elf.ET_REL, elf.ELFOSABI_NONE, false), "want an executable"},
		{"not ELF", ArchX86_64, []byte("MZ\x90\x00"), "not an ELF file"},
		{"unknown arch", "arm64", fakeAgent(t, elf.EM_AARCH64, elf.ET_EXEC, elf.ELFOSABI_NONE, false), `unknown arch "arm64"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckAgent(tc.bin, tc.arch)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// unitKeys returns the "Key=value" lines of a unit file, comments dropped.
func unitKeys(unit string) []string {
	var keys []string
	for _, line := range strings.Split(unit, "\n") {
		if strings.Contains(line, "=") && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	return keys
}

// TestUnits checks what the units promise: each is enabled through the wants
// link that Files makes, starts a program that Files installs executable,
// and has the settings the issue asks for.
func TestUnits(t *testing.T) {
	files, err := Files(Options{Init: systemd, HasNetTool: true, NoGrow: true, Arch: ArchX86_64, AgentBin: staticAgent(t, ArchX86_64)})
	if err != nil {
		t.Fatal(err)
	}
	m := byPath(files)
	tests := []struct {
		unit string
		want []string
	}{
		{networkUnit, []string{"Type=oneshot", "Before=network.target network-online.target"}},
		{agentUnit, []string{"Restart=always", "RestartSec=2", "StartLimitIntervalSec=0", "After=systemd-modules-load.service"}},
		{firstBootUnit, []string{"Type=oneshot", "ConditionPathExists=" + firstBootMarker, "Before=ssh.service sshd.service systemd-user-sessions.service"}},
	}
	for _, tc := range tests {
		t.Run(tc.unit, func(t *testing.T) {
			keys := unitKeys(string(m[unitDir+"/"+tc.unit].Data))
			for _, want := range append(tc.want, "WantedBy=multi-user.target") {
				if !slices.Contains(keys, want) {
					t.Errorf("no %q in %q", want, keys)
				}
			}
			if link := m[wantsDir+"/"+tc.unit]; link.Type != TypeSymlink || link.Target != unitDir+"/"+tc.unit {
				t.Errorf("wants link %+v", link)
			}
			var exec string
			for _, k := range keys {
				if v, ok := strings.CutPrefix(k, "ExecStart="); ok {
					exec = strings.Fields(v)[0]
				}
			}
			if f, ok := m[exec]; !ok || f.Type != TypeRegular || f.Mode != 0o755 {
				t.Errorf("ExecStart program %q is not an installed 0755 file: %+v", exec, f)
			}
		})
	}
}

func TestModulesLoad(t *testing.T) {
	files, err := Files(Options{Init: systemd, HasNetTool: true, NoGrow: true, Arch: ArchAarch64, AgentBin: staticAgent(t, ArchAarch64)})
	if err != nil {
		t.Fatal(err)
	}
	var modules []string
	for _, line := range strings.Split(string(byPath(files)[modulesLoadPath].Data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			modules = append(modules, line)
		}
	}
	want := []string{"vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport"}
	if !slices.Equal(modules, want) {
		t.Errorf("modules %q, want %q", modules, want)
	}
}

// systemd is a guest whose /sbin/init is systemd's, as an Image tells it.
var systemd = InitSystem{Name: InitSystemd, Path: "/usr/lib/systemd/systemd"}
