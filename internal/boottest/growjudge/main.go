//go:build linux

// Command growjudge is the /init of the boot test's growth judge
// (internal/boottest, issue 19): the guest kernel's online resize, driven by
// the real ext4pack-init grow, on small images whose disks were made
// larger, with nothing else booted. For each NVMe disk, named by its
// serial, it mounts the filesystem, runs `/ext4pack-init grow` twice,
// noting what each run printed and what the kernel logged meanwhile,
// measures the result and writes a file larger than the image was, unmounts,
// and prints one line
//
//	GROWJUDGE {"serial":..., ...}
//
// on the console. Then it powers off; the host runs e2fsck on each disk.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// run is one ext4pack-init grow.
type run struct {
	Exit   int      `json:"exit"`
	Output string   `json:"output"`
	Kernel []string `json:"kernel"` // the kernel's EXT4-fs lines meanwhile
	Millis int64    `json:"millis"`
}

// result is one disk's.
type result struct {
	Serial string `json:"serial"`
	Device string `json:"device"`
	Err    string `json:"err,omitempty"`
	First  run    `json:"first"`
	Again  run    `json:"again"`
	Total  int64  `json:"total"` // statfs: bytes in all
	Free   int64  `json:"free"`
	File   string `json:"file"` // writing a file larger than the image: "ok" or the error
}

func main() {
	for _, m := range [][3]string{{"devtmpfs", "/dev", "mode=0755"}, {"proc", "/proc", ""}, {"sysfs", "/sys", ""}} {
		os.MkdirAll(m[1], 0o755)
		if err := unix.Mount(m[0], m[1], m[0], 0, m[2]); err != nil {
			fmt.Printf("growjudge: mount %s: %v\n", m[1], err)
		}
	}
	want := 0
	fileSize := int64(128 << 20)
	cmdline, _ := os.ReadFile("/proc/cmdline")
	for _, w := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(w, "growjudge.disks="); ok {
			want, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(w, "growjudge.file="); ok {
			fileSize, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	var disks []string
	for i := 0; i < 100; i++ {
		disks, _ = filepath.Glob("/sys/block/nvme*n1")
		if len(disks) >= want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	sort.Strings(disks)
	fmt.Printf("growjudge: %d disks, %d expected\n", len(disks), want)
	for _, d := range disks {
		r := judge(filepath.Base(d), fileSize)
		b, _ := json.Marshal(r)
		fmt.Printf("GROWJUDGE %s\n", b)
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func judge(name string, fileSize int64) result {
	serial, _ := os.ReadFile("/sys/block/" + name + "/device/serial")
	r := result{Serial: strings.TrimSpace(string(serial)), Device: "/dev/" + name}
	mnt := "/mnt/" + r.Serial
	os.MkdirAll(mnt, 0o755)
	// noinit_itable: the kernel would zero the new groups' inode tables
	// in the background, work the judge does not need (the matrix's
	// guests keep the default).
	if err := unix.Mount(r.Device, mnt, "ext4", 0, "noinit_itable"); err != nil {
		r.Err = fmt.Sprintf("mount: %v", err)
		return r
	}
	r.First = grow(mnt)
	r.Again = grow(mnt)
	var fs unix.Statfs_t
	if err := unix.Statfs(mnt, &fs); err == nil {
		r.Total, r.Free = int64(fs.Blocks)*fs.Bsize, int64(fs.Bavail)*fs.Bsize
	}
	r.File = "ok"
	if err := writeAllocated(filepath.Join(mnt, "bigger-than-the-image"), fileSize); err != nil {
		r.File = err.Error()
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		r.Err = fmt.Sprintf("umount: %v", err)
	}
	return r
}

// grow runs the helper once and collects what the kernel logged meanwhile.
func grow(mnt string) run {
	kmsg, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err == nil {
		defer kmsg.Close()
		unix.Seek(int(kmsg.Fd()), 0, unix.SEEK_END)
	}
	start := time.Now()
	var out bytes.Buffer
	cmd := exec.Command("/ext4pack-init", "grow", mnt)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	r := run{Output: out.String(), Millis: time.Since(start).Milliseconds()}
	if x, ok := err.(*exec.ExitError); ok {
		r.Exit = x.ExitCode()
	} else if err != nil {
		r.Exit, r.Output = -1, err.Error()
	}
	if kmsg != nil {
		buf := make([]byte, 8192)
		for {
			n, err := unix.Read(int(kmsg.Fd()), buf)
			if err == unix.EPIPE {
				continue // records were overwritten; read on
			}
			if err != nil || n <= 0 {
				break
			}
			// PRIORITY,SEQ,TIME,FLAGS;MESSAGE
			if _, msg, ok := strings.Cut(string(buf[:n]), ";"); ok && strings.Contains(msg, "EXT4-fs") {
				r.Kernel = append(r.Kernel, strings.TrimSpace(msg))
			}
		}
	}
	return r
}

// writeAllocated makes a file of size bytes whose blocks are all allocated,
// and writes its last block.
func writeAllocated(p string, size int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		return os.NewSyscallError("fallocate", err)
	}
	if _, err := f.WriteAt(make([]byte, 4096), size-4096); err != nil {
		return err
	}
	return f.Sync()
}
