package boottest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// growJudgeName selects the growth judge in EXT4PACK_BOOT_GUESTS.
const growJudgeName = "grow-kernel"

// growJudgeCase is one disk of the growth judge: a 64 MiB image on a file
// made size bytes long.
type growJudgeCase struct {
	serial string // the NVMe serial the judge names it by
	size   int64
	// blocks is the block count the kernel must end with: size's whole
	// blocks unless it leaves out a last group too small to use.
	blocks uint64
}

// growJudgeCases go from nothing to grow to 1 TiB: 64 GiB is as far as the
// reserved GDT blocks of a 64 MiB image reach (mke2fs reserves for 1024
// times the size), and 1 TiB needs the kernel's conversion to meta_bg. A
// file twice the image's size must fit in those of 1 GiB and more.
var growJudgeCases = []growJudgeCase{
	{serial: "same", size: 64 << 20, blocks: 16384},
	{serial: "oneblock", size: 64<<20 + 4096, blocks: 16385},
	{serial: "g4", size: 4 << 30, blocks: 1 << 20},
	{serial: "g4tiny", size: 4<<30 + 64*4096, blocks: 1 << 20},
	{serial: "g4small", size: 4<<30 + 1000*4096, blocks: 1<<20 + 1000},
	{serial: "g64", size: 64 << 30, blocks: 16 << 20},
	{serial: "t1", size: 1 << 40, blocks: 256 << 20},
}

// growJudgeResult is growjudge's line for one disk.
type growJudgeResult struct {
	Serial, Device, Err string
	First, Again        struct {
		Exit   int
		Output string
		Kernel []string
		Millis int64
	}
	Total, Free int64
	File        string
}

// growKernel is issue 19's judge of the growth itself, apart from any init:
// the guest kernel (Debian's 6.1) boots an initramfs whose /init,
// ./growjudge, mounts each of growJudgeCases' disks, runs the real
// ext4pack-init grow on it twice, and reports. The first run must grow the
// filesystem to its disk and say so in one line (nothing when there was
// nothing to grow), with the kernel's own resize lines; the second must
// neither say nor make the kernel say anything; a file twice the image's
// size must fit. Then e2fsck -fn must be clean on every disk, and its
// superblock must count the blocks the kernel was to end with.
func growKernel(t *testing.T, env *bootEnv) {
	dir := t.TempDir()
	start := time.Now()
	var args []string
	for i, c := range growJudgeCases {
		img := filepath.Join(dir, c.serial+".ext4")
		growJudgeImage(t, img)
		if err := os.Truncate(img, c.size); err != nil {
			t.Fatal(err)
		}
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,if=none,id=d%d,format=raw,discard=unmap,detect-zeroes=unmap", img, i),
			"-device", fmt.Sprintf("nvme,drive=d%d,serial=%s", i, c.serial))
	}
	initrd := filepath.Join(dir, "initrd.gz")
	if err := buildGrowJudgeInitramfs(initrd, env.tools.guest["growjudge-x86_64"], env.tools.guest["ext4pack-init-x86_64"]); err != nil {
		t.Fatal(err)
	}
	console := filepath.Join(dir, "console.log")
	accel := []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
	if env.kvm {
		accel = []string{"-accel", "kvm", "-cpu", "host"}
	}
	qemu, err := lookTool(qemuBinary["x86_64"])
	if err != nil {
		t.Fatal(err)
	}
	args = append(append(accel, "-M", "q35", "-smp", "2", "-m", "1024",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "file:"+console, "-kernel", env.kernels["x86_64"].vmlinuz, "-initrd", initrd,
		"-append", fmt.Sprintf("console=ttyS0 panic=-1 growjudge.disks=%d growjudge.file=%d", len(growJudgeCases), 2*ext4w.MinSize)),
		args...)
	ctx, cancel := context.WithTimeout(t.Context(), env.timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, qemu, args...).CombinedOutput()
	log := readLog(console)
	keepLogs(t, env.cfg.logsDir, growJudgeName, vm{console: console})
	if err != nil {
		t.Fatalf("qemu: %v\n%s\nconsole:\n%s", err, out, log)
	}
	t.Logf("the judge's boot: %v", since(start))
	results := map[string]growJudgeResult{}
	for _, l := range strings.Split(log, "\n") {
		if _, js, ok := strings.Cut(l, "GROWJUDGE "); ok {
			var r growJudgeResult
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			results[r.Serial] = r
		}
	}
	if strings.Contains(log, "Kernel panic") {
		t.Errorf("the kernel panicked:\n%s", log)
	}
	for _, c := range growJudgeCases {
		t.Run(c.serial, func(t *testing.T) {
			r, ok := results[c.serial]
			if !ok {
				t.Fatalf("no result for disk %s:\n%s", c.serial, log)
			}
			t.Logf("%s: first run %d ms, %q, kernel %q", c.serial, r.First.Millis, strings.TrimSpace(r.First.Output), r.First.Kernel)
			grows := c.blocks != 16384
			mnt := "/mnt/" + c.serial
			switch {
			case r.Err != "":
				t.Errorf("%s", r.Err)
			case r.First.Exit != 0:
				t.Errorf("first run: exit %d, %q", r.First.Exit, r.First.Output)
			case grows && (strings.Count(r.First.Output, "\n") != 1 ||
				!strings.HasPrefix(r.First.Output, "ext4pack-init: grew "+mnt+" on "+r.Device+" from 64.0 MiB to ")):
				t.Errorf("first run said %q, want one line of growth", r.First.Output)
			case grows && !hasLine(r.First.Kernel, "resizing filesystem from 16384 to"):
				t.Errorf("first run: the kernel said %q", r.First.Kernel)
			case c.size >= 1<<40 && !hasLine(r.First.Kernel, "Converting file system to meta_bg"):
				t.Errorf("1 TiB without meta_bg: the kernel said %q", r.First.Kernel)
			case !grows && (r.First.Output != "" || len(r.First.Kernel) != 0):
				t.Errorf("nothing to grow, but the first run said %q and the kernel %q", r.First.Output, r.First.Kernel)
			case r.Again.Exit != 0 || r.Again.Output != "" || len(r.Again.Kernel) != 0:
				t.Errorf("second run: exit %d, said %q, the kernel %q; want silence", r.Again.Exit, r.Again.Output, r.Again.Kernel)
			case c.size >= 1<<30 && r.File != "ok":
				t.Errorf("a file of %d bytes: %s", 2*ext4w.MinSize, r.File)
			}
			// The metadata: the journal (4 MiB at 64 MiB), the inode
			// tables (1/64 of the image, less in added groups), bitmaps.
			want := int64(c.blocks) * 4096
			if r.Total > want || r.Total < want-want/20-8<<20 {
				t.Errorf("statfs: %d bytes in all, want 95-100%% of %d, less 8 MiB", r.Total, want)
			}
			img := filepath.Join(dir, c.serial+".ext4")
			if got := imageBlocks(t, img); got != c.blocks {
				t.Errorf("%d blocks after the growth, want %d", got, c.blocks)
			}
			start := time.Now()
			oracle.Fsck(t, img)
			t.Logf("e2fsck -fn of %s (%d bytes): clean, %v", c.serial, c.size, since(start))
		})
	}
}

func hasLine(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// growJudgeImage writes a 64 MiB image with a few files, as make-bundle
// sizes a small rootfs.
func growJudgeImage(t *testing.T, p string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ext4w.NewWriter(f, ext4w.WithSize(ext4w.MinSize))
	if err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1700000000, 0)
	for i := range 20 {
		data := []byte(strings.Repeat(string(rune('a'+i)), 10000*(i+1)))
		if err := w.Create(fmt.Sprintf("etc/file%d", i), &ext4w.File{Type: ext4w.TypeRegular, Mode: 0o644, Size: int64(len(data)), Mtime: mtime}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// buildGrowJudgeInitramfs writes the judge's initramfs: growjudge as /init,
// ext4pack-init beside it, and the device nodes the kernel and the Go
// runtime open before devtmpfs is mounted. The kernel has NVMe and ext4
// built in: no modules.
func buildGrowJudgeInitramfs(dst, judge, initBin string) error {
	var c cpioWriter
	c.dir("dev", 0o755)
	c.node("dev/console", 0o600, 5, 1)
	c.node("dev/null", 0o666, 1, 3)
	for name, src := range map[string]string{"init": judge, "ext4pack-init": initBin} {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		c.file(name, 0o755, b)
	}
	c.trailer()
	return writeGzip(dst, c.buf.Bytes())
}
