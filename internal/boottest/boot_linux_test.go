package boottest

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// bootEnv is what every boot of the suite shares: one kernel, one base
// rootfs tar and one build of the tools, so that the three boots cost three
// boots and not three debootstraps.
type bootEnv struct {
	cfg     config
	kernel  kernel
	base    string
	tools   imageTools
	kvm     bool
	timeout time.Duration
}

// bootCase is one boot: a variant of the test rootfs and the checks it must
// fail (none for the positive boot).
type bootCase struct {
	name        string
	v           variant
	wantFail    []string
	needsBanger bool // meaningful only with the banger guest files
	// layered builds the image with make-bundle --image from the test
	// rootfs split into three OCI layers (layeredLayout).
	layered bool
}

// bootCases are the suite: one positive boot and two negative controls,
// which prove that the harness can fail and fails for the right reason.
var bootCases = []bootCase{
	{name: "positive"},
	// The same rootfs as a three-layer container image (issue 13).
	{name: "positive-3-layer-image", layered: true},
	{
		// The setuid bit dropped from /usr/bin/passwd in the tar: the
		// image must carry the tar's mode, and the checker must see it.
		name: "negative-setuid-dropped",
		v: variant{edits: map[string]func(*tar.Header){
			"usr/bin/passwd": func(h *tar.Header) { h.Mode &^= 0o4000 },
		}},
		wantFail: []string{"passwd-mode"},
	},
	{
		// The first-boot unit never runs. It is masked through
		// /etc/systemd/system.control, which systemd reads before
		// /etc/systemd/system, rather than by dropping its
		// multi-user.target.wants link: once make-bundle writes the guest
		// files, ext4pack replaces any link the tar has, so only a change
		// elsewhere in the tar keeps this control working.
		name: "negative-first-boot-masked",
		v: variant{symlinks: map[string]string{
			"etc/systemd/system.control/banger-first-boot.service": "/dev/null",
		}},
		wantFail:    []string{"first-boot-ran", "first-boot-marker"},
		needsBanger: true,
	},
}

// TestBoot is issue 7: the image ext4pack makes from a Debian bookworm
// rootfs boots under qemu as the VM's root disk, and the guest's own checks
// pass; the negative controls fail exactly the checks they break.
func TestBoot(t *testing.T) {
	run, why := runDecision(os.Getenv)
	if !run {
		t.Skip(why)
	}
	env := prepareBoot(t)
	for _, c := range bootCases {
		t.Run(c.name, func(t *testing.T) {
			if c.needsBanger && !env.cfg.banger {
				t.Skipf("%s=0: the image has no banger guest files to break", envBanger)
			}
			bootOne(t, env, c)
		})
	}
}

// prepareBoot checks the prerequisites and fetches or builds what the boots
// share, logging how long each step took.
func prepareBoot(t *testing.T) *bootEnv {
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOARCH != "amd64" {
		skipOrFail(t, fmt.Sprintf("the boot test boots an amd64 Debian; this host is %s", runtime.GOARCH))
	}
	type prereq struct{ name, pkg string }
	tools := []prereq{
		{"qemu-system-x86_64", "qemu-system-x86"},
		{"apt-cache", "apt"},
		{"apt-get", "apt"},
		{"dpkg-deb", "dpkg"},
		{"depmod", "kmod"},
		{"e2fsck", "e2fsprogs"},
		{"go", "Go"},
	}
	needBase := cfg.rootfsTar == ""
	if needBase {
		if _, err := os.Stat(filepath.Join(cfg.cacheDir, baseTarName)); err == nil {
			needBase = false
		}
	}
	if needBase {
		if os.Geteuid() != 0 {
			skipOrFail(t, errNeedRoot.Error())
		}
		tools = append(tools, prereq{"debootstrap", "debootstrap"}, prereq{"tar", "tar"})
	}
	var missing []string
	for _, tl := range tools {
		if _, err := lookTool(tl.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", tl.name, tl.pkg))
		}
	}
	if len(missing) > 0 {
		skipOrFail(t, "the boot test needs "+strings.Join(missing, ", ")+
			": apt-get install --no-install-recommends qemu-system-x86 debootstrap kmod e2fsprogs")
	}
	if err := os.MkdirAll(cfg.cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("cache: %s", cfg.cacheDir)

	ctx := t.Context()
	env := &bootEnv{cfg: cfg}
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
	accel := "TCG (no vmx or svm in /proc/cpuinfo, or no usable /dev/kvm)"
	if env.kvm {
		accel = "KVM"
	}
	t.Logf("accelerator: %s; each boot may take %v", accel, env.timeout)

	start := time.Now()
	env.kernel, err = fetchKernel(ctx, cfg.cacheDir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s from %s: %v", env.kernel.version, filepath.Base(env.kernel.deb), since(start))

	start = time.Now()
	var built bool
	env.base, built, err = baseRootfsTar(ctx, cfg, t.TempDir(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	how := "cached"
	switch {
	case built:
		how = "debootstrap and tar"
	case cfg.rootfsTar != "":
		how = "from " + envRootfsTar
	}
	t.Logf("base rootfs %s (%s): %v", env.base, how, since(start))

	start = time.Now()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	env.tools, err = buildTools(ctx, root, t.TempDir(), cfg.ext4packBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built ext4pack and banger-vsock-agent: %v", since(start))
	return env
}

// bootOne builds one image, boots it and judges what the guest reported.
func bootOne(t *testing.T, env *bootEnv, c bootCase) {
	ctx := t.Context()
	dir := t.TempDir()

	start := time.Now()
	rootfsTar := filepath.Join(dir, "rootfs.tar")
	if err := composeTestTar(rootfsTar, env.base, env.kernel, c.v); err != nil {
		t.Fatal(err)
	}
	t.Logf("test rootfs tar: %v", since(start))

	start = time.Now()
	input := []string{"--rootfs-tar", rootfsTar}
	if c.layered {
		input = []string{"--image", layeredLayout(t, rootfsTar, dir)}
		t.Logf("three-layer OCI layout: %v", since(start))
		start = time.Now()
	}
	image, out, err := buildRootfsImage(ctx, env.tools, input, dir, env.cfg.banger)
	if err != nil {
		t.Fatal(err)
	}
	if c.layered {
		checkLayers(t, image)
	}
	if out != "" {
		t.Logf("ext4pack printed:\n%s", out)
	}
	t.Logf("image: %v", since(start))
	// The tar is hundreds of MB; the image is all the boot needs.
	os.Remove(rootfsTar)
	os.RemoveAll(filepath.Join(dir, "layout"))

	machine := vm{
		kvm:     env.kvm,
		kernel:  env.kernel.vmlinuz,
		image:   image,
		banger:  env.cfg.banger,
		console: filepath.Join(dir, "console.log"),
		results: filepath.Join(dir, "results.log"),
		timeout: env.timeout,
	}
	took, runErr := machine.run(ctx)
	keepLogs(t, env.cfg.logsDir, c.name, machine)
	console := readLog(machine.console)
	rep := parseReport(readLog(machine.results))
	if runErr != nil {
		t.Fatalf("FAIL: %v\nguest report so far:\n%s\nguest console log:\n%s", runErr, rep.lines(), console)
	}
	t.Logf("boot to power-off: %v", took.Round(100*time.Millisecond))

	t.Logf("guest report:\n%s", rep.lines())
	lines := ext4Lines(console)
	t.Logf("kernel EXT4-fs lines:\n%s", strings.Join(lines, "\n"))
	if bad := suspiciousExt4(lines); len(bad) > 0 {
		t.Errorf("the kernel printed EXT4-fs lines other than a clean mount's:\n%s", strings.Join(bad, "\n"))
	}

	if err := judge(rep, wantChecks(env.cfg.banger), c.wantFail); err != nil {
		t.Errorf("FAIL: %v\nguest console log:\n%s", err, console)
	} else if len(c.wantFail) == 0 {
		t.Logf("PASS: the guest passed every check")
	} else {
		t.Logf("PASS: the guest failed exactly %v, as this control should", c.wantFail)
	}

	// The guest wrote to the filesystem and shut down cleanly: e2fsck must
	// still find nothing to fix.
	res, err := oracle.RunFsck(image)
	if err != nil {
		t.Fatalf("e2fsck after the boot: %v", err)
	}
	if !res.Clean() {
		t.Errorf("e2fsck -fn after the boot is not clean:\n%s", res.Output)
	}
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
			t.Logf("%s: no %s log: %v", envLogs, suffix, err)
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+suffix+".log"), b, 0o644); err != nil {
			t.Errorf("%s: %v", envLogs, err)
		}
	}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }
