package boottest

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// bootEnv is what every boot of the suite shares: the kernels, initramfs
// and tools, built once.
type bootEnv struct {
	cfg     config
	kernels map[string]kernel // by arch
	initrd  map[string]string // by arch
	tools   imageTools
	host    string // the host's busybox, for its applet list
	scratch string
	kvm     bool
	timeout time.Duration
	// recipeMu makes parallel guests build a rootfs recipe once.
	recipeMu sync.Mutex
}

// TestBoot is issues 7 and 14: an image ext4pack makes boots under qemu as
// the VM's root disk under each init the matrix lists, the guest's checks
// pass, a reboot does not run the first boot again, and the negative
// controls fail exactly the checks they break.
func TestBoot(t *testing.T) {
	run, why := runDecision(os.Getenv)
	if !run {
		t.Skip(why)
	}
	guests, judge, err := selectGuests(os.Getenv(envGuests))
	if err != nil {
		t.Fatal(err)
	}
	env := prepareBoot(t, guests, judge)
	start := time.Now()
	// Cleanup runs once every parallel subtest is done.
	t.Cleanup(func() {
		t.Logf("the matrix (%d guests, %d at once) took %v after the preparation", len(guests), env.cfg.parallel, since(start))
	})
	lanes := make(chan struct{}, env.cfg.parallel)
	if judge {
		t.Run(growJudgeName, func(t *testing.T) {
			t.Parallel()
			lanes <- struct{}{}
			defer func() { <-lanes }()
			growKernel(t, env)
		})
	}
	for _, g := range guests {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			lanes <- struct{}{}
			defer func() { <-lanes }()
			bootGuest(t, env, g)
		})
	}
}

// selectGuests picks the guests named in a comma-separated list, all of
// them for "", and says whether the growth judge (growJudgeName) is asked
// for too: it is with "".
func selectGuests(list string) ([]guest, bool, error) {
	if list == "" {
		return matrix, true, nil
	}
	var gs []guest
	judge := false
	for _, name := range strings.Split(list, ",") {
		if name == growJudgeName {
			judge = true
			continue
		}
		i := slices.IndexFunc(matrix, func(g guest) bool { return g.name == name })
		if i < 0 {
			names := []string{growJudgeName}
			for _, g := range matrix {
				names = append(names, g.name)
			}
			return nil, false, fmt.Errorf("%s: no guest %q (there are %s)", envGuests, name, strings.Join(names, ", "))
		}
		gs = append(gs, matrix[i])
	}
	return gs, judge, nil
}

// prepareBoot checks the prerequisites and fetches or builds what the boots
// share, logging how long each step took. The growth judge (judge) boots an
// x86_64 kernel.
func prepareBoot(t *testing.T, guests []guest, judge bool) *bootEnv {
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if goarch["x86_64"] != "amd64" || os.Getenv("GOARCH") != "" && os.Getenv("GOARCH") != "amd64" {
		skipOrFail(t, "the boot test runs on an amd64 host")
	}
	archs := map[string]bool{"x86_64": judge}
	embedded := false
	for _, g := range guests {
		archs[g.arch] = true
		embedded = embedded || g.embedded
	}
	type prereq struct{ name, pkg string }
	tools := []prereq{
		{"apt-cache", "apt"}, {"apt-get", "apt"}, {"dpkg-deb", "dpkg"}, {"depmod", "kmod"},
		{"e2fsck", "e2fsprogs"}, {"debugfs", "e2fsprogs"}, {"go", "Go"}, {"tar", "tar"},
		{"debootstrap", "debootstrap"}, {"make", "make"},
	}
	if archs["x86_64"] {
		tools = append(tools, prereq{"qemu-system-x86_64", "qemu-system-x86"})
	}
	if archs["aarch64"] {
		tools = append(tools, prereq{"qemu-system-aarch64", "qemu-system-arm"})
	}
	var missing []string
	for _, tl := range tools {
		if _, err := lookTool(tl.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", tl.name, tl.pkg))
		}
	}
	if len(missing) > 0 {
		skipOrFail(t, "the boot test needs "+strings.Join(missing, ", ")+": run internal/boottest/install-deps.sh")
	}
	if err := os.MkdirAll(cfg.cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("cache: %s", cfg.cacheDir)

	ctx := t.Context()
	env := &bootEnv{cfg: cfg, kernels: map[string]kernel{}, initrd: map[string]string{}, scratch: t.TempDir()}
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
	if hostHasVirtualization(string(cpuinfo)) {
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
			f.Close()
			env.kvm = true
		}
	}
	env.timeout = cfg.bootTimeout
	if env.timeout == 0 {
		env.timeout = bootTimeoutTCG
		if env.kvm {
			env.timeout = bootTimeoutKVM
		}
	}
	t.Logf("KVM for x86_64 guests: %v; each boot may take %v", env.kvm, env.timeout)

	start := time.Now()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var archList []string
	for a, need := range archs {
		if need {
			archList = append(archList, a)
		}
	}
	slices.Sort(archList)
	env.tools, err = buildTools(ctx, root, t.TempDir(), cfg.ext4packBin, archList, embedded)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built ext4pack and, for %v, the agent, ext4pack-init, the checker and rdinit: %v", archList, since(start))

	for _, arch := range archList {
		start = time.Now()
		k, err := fetchKernel(ctx, cfg.cacheDir, arch, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		env.kernels[arch] = k
		env.initrd[arch] = filepath.Join(env.scratch, "initrd-"+arch+".gz")
		size, err := buildInitramfs(env.initrd[arch], env.tools.guest["rdinit-"+arch], k.modules)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s kernel %s and a %d KB initramfs: %v", arch, k.version, size>>10, since(start))
	}
	if env.host, err = busybox(ctx, cfg.cacheDir, "x86_64", env.scratch, t.Logf); err != nil {
		t.Fatal(err)
	}
	return env
}

// baseTar returns g's base rootfs tar.
func baseTar(t *testing.T, env *bootEnv, g guest) string {
	ctx := t.Context()
	start := time.Now()
	defer func() { t.Logf("base rootfs (%s): %v", g.base, since(start)) }()
	switch g.base {
	case baseRecipe, baseOpenRCBB:
		if env.cfg.rootfsTar != "" && g.recipe.tarName == systemdRecipe.tarName {
			return env.cfg.rootfsTar
		}
		// Two guests share the OpenRC recipe: one builds it, the other
		// waits and takes the cached tar.
		env.recipeMu.Lock()
		p, built, err := buildRecipe(ctx, env.cfg.cacheDir, g.recipe, env.scratch, t.Logf)
		env.recipeMu.Unlock()
		if err != nil {
			if err == errNeedRoot {
				skipOrFail(t, err.Error())
			}
			t.Fatal(err)
		}
		if built {
			t.Logf("built and cached %s", p)
		}
		return p
	case baseBusybox:
		bb, err := busybox(ctx, env.cfg.cacheDir, g.arch, t.TempDir(), t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		applets, err := busyboxApplets(ctx, env.host)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "busybox.tar")
		if err := busyboxBase(p, bb, applets); err != nil {
			t.Fatal(err)
		}
		return p
	case baseDistroless:
		p := filepath.Join(t.TempDir(), "distroless.tar")
		if err := distrolessBase(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Fatalf("unknown base %q", g.base)
	return ""
}

// guestImage composes g's test rootfs with v's changes on top and makes
// its image with make-bundle, checking what make-bundle said of the init.
func guestImage(t *testing.T, env *bootEnv, g guest, base string, extra bootCase) string {
	ctx := t.Context()
	dir := t.TempDir()
	checker, err := os.ReadFile(env.tools.guest["boottest-check-"+g.arch])
	if err != nil {
		t.Fatal(err)
	}
	v := guestVariant(g, checker)
	if g.base == baseOpenRCBB {
		bb, err := os.ReadFile(env.host)
		if err != nil {
			t.Fatal(err)
		}
		// Alpine's shape on the OpenRC rootfs: busybox as /sbin/init,
		// whose inittab (guestVariant's) runs OpenRC.
		v.add = append(v.add,
			addEntry{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, data: bb},
			addEntry{name: "sbin/init", typ: tar.TypeSymlink, link: "/bin/busybox"})
	}
	v.edits = extra.v.edits
	v.symlinks = extra.v.symlinks
	start := time.Now()
	rootfsTar := filepath.Join(dir, "rootfs.tar")
	if err := composeTestTar(rootfsTar, base, v); err != nil {
		t.Fatal(err)
	}
	t.Logf("test rootfs tar: %v", since(start))
	start = time.Now()
	input := []string{"--rootfs-tar", rootfsTar}
	if extra.layered {
		input = []string{"--image", layeredLayout(t, rootfsTar, dir)}
		t.Logf("three-layer OCI layout: %v", since(start))
		start = time.Now()
	}
	res, err := buildRootfsImage(ctx, env.tools, input, dir, g.arch, g.embedded)
	if err != nil {
		t.Fatal(err)
	}
	if g.embedded {
		checkEmbedded(t, env, g, res.image)
	}
	if extra.layered {
		checkLayers(t, res.image)
	}
	os.Remove(rootfsTar)
	os.RemoveAll(filepath.Join(dir, "layout"))
	t.Logf("make-bundle and extraction: %v; it printed:\n%s", since(start), res.stderr)
	if want := "ext4pack: guest init: " + g.init + " "; !strings.Contains(res.stderr, want) {
		t.Errorf("make-bundle did not print %q", want)
	}
	if res.guestInit != g.init {
		t.Errorf("manifest guest_init %q, want %q", res.guestInit, g.init)
	}
	return res.image
}

// checkEmbedded checks that the guest binaries in image are those make
// build built into ext4pack: so the guest boots what users get.
func checkEmbedded(t *testing.T, env *bootEnv, g guest, image string) {
	debugfs, err := lookTool("debugfs")
	if err != nil {
		t.Fatal(err)
	}
	// Every guest grows its root, with ext4pack-init as the helper.
	files := map[string]string{"/usr/local/bin/banger-vsock-agent": "banger-vsock-agent-" + g.arch,
		"/usr/local/sbin/ext4pack-init": "ext4pack-init-" + g.arch}
	for inImage, name := range files {
		got, err := exec.Command(debugfs, "-R", "cat "+inImage, image).Output()
		if err != nil {
			t.Fatalf("debugfs cat %s: %v", inImage, err)
		}
		want, err := os.ReadFile(env.tools.embeddedGuest[name])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || len(want) < 1<<20 {
			t.Errorf("%s in the image (%d bytes) is not the %s make build embedded (%d bytes)", inImage, len(got), name, len(want))
		}
	}
}

// growHelper is what a guest's growth control removes from the image: the
// helper, or in an ext4pack-init guest, where it is PID 1, the switch.
func growHelper(g guest) string {
	if g.init == "ext4pack-init" {
		return "/etc/banger/grow-root"
	}
	return "/usr/local/sbin/ext4pack-init"
}

// bootGuest boots g's image twice, the first time on a disk enlarged to
// enlargedDisk, then each negative control once.
func bootGuest(t *testing.T, env *bootEnv, g guest) {
	base := baseTar(t, env, g)
	image := guestImage(t, env, g, base, bootCase{})
	pristine := filepath.Join(t.TempDir(), "pristine.ext4")
	if out, err := exec.Command("cp", "--sparse=always", image, pristine).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	st, err := os.Stat(image)
	if err != nil {
		t.Fatal(err)
	}
	orig := st.Size()
	enlarge(t, image, enlargedDisk)
	want := wantChecks(g)
	grown := append(slices.Clone(want), growChecks...)
	t.Run("boot", func(t *testing.T) {
		bootOnce(t, env, g, image, bootSpec{want: grown, firstBoots: 1, growFrom: orig, grows: true})
	})
	// The same image again: the first boot's marker is gone, so the
	// set-up must not run, and / fills the disk, so nothing grows and
	// nothing is said about it; everything else must work as before.
	reboot := bootSpec{want: grown, firstBoots: 0, growFrom: orig}
	if g.load {
		reboot.load = true
		reboot.want = append(slices.Clone(grown), "agent-load")
	}
	t.Run("reboot", func(t *testing.T) { bootOnce(t, env, g, image, reboot) })

	var controls []bootCase
	for _, p := range g.agentLinks {
		fail := []string{"agent-healthz", "agent-ports", "agent-unprivileged"}
		if slices.Contains(want, "agent-restart") {
			fail = append(fail, "agent-restart")
		}
		if p == agentBinPath {
			fail = append(fail, "agent-version")
		}
		controls = append(controls, bootCase{name: "negative-agent-start-removed", remove: []string{p}, wantFail: fail})
	}
	if g.arch == "x86_64" {
		controls = append(controls, bootCase{name: "negative-grow-helper-removed", remove: []string{growHelper(g)},
			disk: enlargedDisk, wantFail: growChecks})
	}
	controls = append(controls, g.extraControls...)
	for _, c := range controls {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "rootfs.ext4")
			if c.v.edits != nil || c.v.symlinks != nil || c.layered {
				img = guestImage(t, env, g, base, c)
			} else {
				if out, err := exec.Command("cp", "--sparse=always", pristine, img).CombinedOutput(); err != nil {
					t.Fatalf("cp: %v\n%s", err, out)
				}
				for _, p := range c.remove {
					if err := removeFromImage(t, img, p); err != nil {
						t.Fatal(err)
					}
				}
				if len(c.remove) > 0 {
					oracle.Fsck(t, img)
				}
			}
			spec := bootSpec{want: want, wantFail: c.wantFail, firstBoots: 1, noConsole: c.noConsole}
			if c.disk > 0 {
				enlarge(t, img, c.disk)
				spec.want, spec.growFrom, spec.grows = append(slices.Clone(want), growChecks...), orig, true
			}
			bootOnce(t, env, g, img, spec)
		})
	}
}

// enlarge makes image size bytes long, sparse, as a VM manager gives a
// guest a larger disk.
func enlarge(t *testing.T, image string, size int64) {
	t.Helper()
	if err := os.Truncate(image, size); err != nil {
		t.Fatal(err)
	}
}

// agentBinPath is the agent in the image; the ext4pack-init guests' control
// removes it, since that init starts it with no file of its own.
const agentBinPath = "/usr/local/bin/banger-vsock-agent"

// removeFromImage takes p out of the ext4 image with debugfs; for
// inittabAgentLine, the agent's respawn line out of /etc/inittab.
func removeFromImage(t *testing.T, img, p string) error {
	debugfs, err := lookTool("debugfs")
	if err != nil {
		return err
	}
	if p != inittabAgentLine {
		out, err := exec.Command(debugfs, "-w", "-R", "rm "+p, img).CombinedOutput()
		if err != nil || strings.Contains(string(out), "not found") {
			return fmt.Errorf("debugfs rm %s: %v\n%s", p, err, out)
		}
		return nil
	}
	tab, err := exec.Command(debugfs, "-R", "cat /etc/inittab", img).Output()
	if err != nil {
		return fmt.Errorf("debugfs cat /etc/inittab: %w", err)
	}
	var kept []string
	dropped := 0
	for _, l := range strings.Split(string(tab), "\n") {
		if strings.Contains(l, ":respawn:") && strings.Contains(l, "banger-vsock-agent") {
			dropped++
			continue
		}
		kept = append(kept, l)
	}
	if dropped != 1 {
		return fmt.Errorf("/etc/inittab has %d agent respawn lines, want 1:\n%s", dropped, tab)
	}
	tmp := filepath.Join(t.TempDir(), "inittab")
	if err := os.WriteFile(tmp, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		return err
	}
	cmds := filepath.Join(t.TempDir(), "cmds")
	script := "rm /etc/inittab\nwrite " + tmp + " /etc/inittab\nsif /etc/inittab mode 0100644\nsif /etc/inittab uid 0\nsif /etc/inittab gid 0\n"
	if err := os.WriteFile(cmds, []byte(script), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(debugfs, "-w", "-f", cmds, img).CombinedOutput(); err != nil {
		return fmt.Errorf("debugfs: %v\n%s", err, out)
	}
	return nil
}

// checkLayers checks, in the image, what the upper layers deleted and
// added: the kernel mounts it read-only.
func checkLayers(t *testing.T, image string) {
	oracle.RequireRoot(t, "mounting the image")
	mnt := t.TempDir()
	out, err := exec.Command("mount", "-o", "ro,loop,noload", image, mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("mount %s: %v: %s", image, err, out)
	}
	defer exec.Command("umount", mnt).Run()
	for _, p := range layerDeleted {
		if _, err := os.Lstat(filepath.Join(mnt, p)); err == nil {
			t.Errorf("/%s is in the image; an upper layer deleted it", p)
		}
	}
	for _, p := range layerAdded {
		if _, err := os.Lstat(filepath.Join(mnt, p)); err != nil {
			t.Errorf("/%s, which an upper layer added: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(mnt, "usr/share")); err != nil {
		t.Errorf("/usr/share went with /usr/share/doc: %v", err)
	}
}

// bootSpec is what one boot must show besides g's own checks.
type bootSpec struct {
	want, wantFail []string
	firstBoots     int // first-boot set-ups the console must show: 1, or 0 on a reboot
	// growFrom, when not 0, is the size of the image before its file was
	// enlarged: the checker's root-grown judges / against it. grows says
	// that this boot must grow /; without it, / already fills the disk
	// and nothing must be said about a resize.
	growFrom int64
	grows    bool
	load     bool // the agent load test (checker's agent-load)
	// noConsole boots with no console for /dev/console (vm.noConsole).
	noConsole bool
}

// bootOnce boots image and judges what the guest reported and what the
// console shows.
func bootOnce(t *testing.T, env *bootEnv, g guest, image string, spec bootSpec) {
	dir := t.TempDir()
	machine := vm{
		arch:      g.arch,
		kvm:       env.kvm && g.arch == "x86_64",
		kernel:    env.kernels[g.arch].vmlinuz,
		initrd:    env.initrd[g.arch],
		image:     image,
		console:   filepath.Join(dir, "console.log"),
		results:   filepath.Join(dir, "results.log"),
		timeout:   env.timeout,
		cad:       g.poweroff == "none",
		noConsole: spec.noConsole,
	}
	if g.arch == "aarch64" {
		machine.results = machine.console
	}
	if machine.cad {
		machine.monitor = filepath.Join(dir, "monitor.sock")
	}
	var extra []string
	if g.start == startUnit {
		// No serial getty: it waits for dev-ttyS0.device, which only udev
		// announces, and a minbase rootfs has no udev.
		extra = []string{"systemd.getty_auto=0", "net.ifnames=0"}
	}
	if spec.growFrom > 0 {
		extra = append(extra, fmt.Sprintf("boottest.grow=%d", spec.growFrom))
	}
	if spec.load {
		extra = append(extra, "boottest.load=1")
	}
	logName := g.name + "-" + strings.ReplaceAll(t.Name()[strings.LastIndex(t.Name(), "/")+1:], "/", "-")
	took, runErr := machine.run(t.Context(), extra...)
	if runErr != nil && !spec.noConsole && stalledBeforeRoot(readLog(machine.console)) {
		// The image is as it was: nothing mounted it. Once more, and the
		// log says so; a second stall fails as any failed boot does.
		keepLogs(t, env.cfg.logsDir, logName+"-stalled", machine)
		t.Logf("the kernel stalled before it mounted the root (%v); booting once more. Its console ended:\n%s",
			strings.SplitN(runErr.Error(), "\n", 2)[0], tail([]byte(readLog(machine.console)), 2048))
		if machine.monitor != "" {
			os.Remove(machine.monitor)
		}
		took, runErr = machine.run(t.Context(), extra...)
	}
	keepLogs(t, env.cfg.logsDir, logName, machine)
	console := readLog(machine.console)
	rep := parseReport(readLog(machine.results))
	hostChecks(&rep, g, console, spec.firstBoots, runErr == nil, spec.noConsole)
	if spec.growFrom > 0 {
		st, err := os.Stat(image)
		if err != nil {
			t.Fatal(err)
		}
		growCheck(&rep, console, imageBlocks(t, image), uint64(st.Size())/4096, spec.grows)
	}
	if runErr != nil {
		t.Fatalf("FAIL: %v\nguest report so far:\n%s\nguest console log:\n%s", runErr, rep.lines(), console)
	}
	t.Logf("boot to power-off: %v", took.Round(100*time.Millisecond))
	t.Logf("guest report:\n%s", rep.lines())
	lines := ext4Lines(console)
	if bad := suspiciousExt4(lines); len(bad) > 0 {
		t.Errorf("the kernel printed EXT4-fs lines other than a clean mount's:\n%s", strings.Join(bad, "\n"))
	}
	if err := judge(rep, spec.want, spec.wantFail); err != nil {
		t.Errorf("FAIL: %v\nguest console log:\n%s", err, console)
	} else if len(spec.wantFail) == 0 {
		t.Logf("PASS: the guest passed every check")
	} else {
		t.Logf("PASS: the guest failed exactly %v, as this control should", spec.wantFail)
	}
	// The guest wrote to the filesystem and shut down cleanly: e2fsck must
	// still find nothing to fix.
	start := time.Now()
	res, err := oracle.RunFsck(image)
	if err != nil {
		t.Fatalf("e2fsck after the boot: %v", err)
	}
	if !res.Clean() {
		t.Errorf("e2fsck -fn after the boot is not clean:\n%s", res.Output)
	}
	if spec.growFrom > 0 {
		t.Logf("e2fsck -fn of the %d-byte image: %v", imageSize(t, image), since(start))
	}
}

// imageBlocks reads the block count from an image's ext4 superblock.
func imageBlocks(t *testing.T, image string) uint64 {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		t.Fatalf("%s has no ext4 superblock", image)
	}
	blocks := uint64(binary.LittleEndian.Uint32(sb[0x4:]))
	if binary.LittleEndian.Uint32(sb[0x60:])&0x80 != 0 { // 64bit: s_blocks_count_hi
		blocks |= uint64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	return blocks
}

func imageSize(t *testing.T, image string) int64 {
	st, err := os.Stat(image)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// keepLogs copies the boot's serial logs into dir, if one is set, for a
// person or a CI artifact to read after the scratch directory is gone.
func keepLogs(t *testing.T, dir, name string, machine vm) {
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("%s: %v", envLogs, err)
		return
	}
	for suffix, src := range map[string]string{"console": machine.console, "results": machine.results} {
		b, err := os.ReadFile(src)
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+suffix+".log"), b, 0o644); err != nil {
			t.Errorf("%s: %v", envLogs, err)
		}
	}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }
