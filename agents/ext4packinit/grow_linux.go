package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64) in
// fs/ext4/ext4.h, as the generic ioctl encoding of x86_64 and arm64 gives
// it: the kernel's online resize to the block count the argument points at.
const ext4IocResizeFS = 0x40086610

// growTool is `ext4pack-init grow [DIR]`: it grows the ext4 filesystem
// mounted at DIR (/ by default) to its whole block device, printing one line
// when it did, nothing when there was nothing to do, and the reason when it
// failed (exit 1).
func growTool(dir string, stderr io.Writer) int {
	msg, err := growFS(dir)
	if err != nil {
		fmt.Fprintf(stderr, "ext4pack-init: grow: %v\n", err)
		return 1
	}
	if msg != "" {
		fmt.Fprintf(stderr, "ext4pack-init: %s\n", msg)
	}
	return 0
}

// growFS grows the ext4 filesystem mounted at dir online to the size of its
// block device and returns a line saying so; "" when there is nothing to do:
// the sizes are equal, or dir is not ext4 on a block device.
func growFS(dir string) (string, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return "", os.NewSyscallError("statfs "+dir, err)
	}
	if fs.Type != unix.EXT4_SUPER_MAGIC {
		return "", nil
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", os.NewSyscallError("stat "+dir, err)
	}
	if unix.Major(st.Dev) == 0 {
		return "", nil // no block device: not ext4 as grow knows it
	}
	dev, err := openBlockDevice(st.Dev)
	if err != nil {
		return "", err
	}
	defer dev.Close()
	var size uint64
	if err := ioctlPtr(int(dev.Fd()), unix.BLKGETSIZE64, unsafe.Pointer(&size)); err != nil {
		return "", os.NewSyscallError("BLKGETSIZE64 "+dev.Name(), err)
	}
	sb, err := readSuperblock(dev)
	if err != nil {
		return "", err
	}
	target, err := growTarget(sb, size)
	if err != nil {
		return "", fmt.Errorf("%s on %s: %w", dir, dev.Name(), err)
	}
	if target == sb.blocks {
		return "", nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return "", err
	}
	defer d.Close()
	blocks := target
	if err := ioctlPtr(int(d.Fd()), ext4IocResizeFS, unsafe.Pointer(&blocks)); err != nil {
		return "", fmt.Errorf("resizing %s on %s from %d to %d blocks: %w", dir, dev.Name(), sb.blocks, target,
			os.NewSyscallError("EXT4_IOC_RESIZE_FS", err))
	}
	// The superblock the kernel updated is in the device's page cache,
	// which this read goes through.
	after, err := readSuperblock(dev)
	if err != nil {
		return "", err
	}
	if after.blocks == sb.blocks {
		return "", fmt.Errorf("the kernel left %s on %s at %d blocks, asked for %d", dir, dev.Name(), sb.blocks, target)
	}
	return fmt.Sprintf("grew %s on %s from %s to %s (%d to %d blocks)", dir, dev.Name(),
		humanBytes(sb.blocks*sb.blockSize), humanBytes(after.blocks*after.blockSize), sb.blocks, after.blocks), nil
}

// ioctlPtr is ioctl(2) with a pointer argument.
func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// openBlockDevice opens the block device numbered rdev read-only. Its node is
// found by the name sysfs gives it, else udev's /dev/block link, else by a
// look through /dev: whichever the guest has at this point of its boot.
func openBlockDevice(rdev uint64) (*os.File, error) {
	majmin := fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev))
	var candidates []string
	if name := devName("/sys/dev/block/" + majmin + "/uevent"); name != "" {
		candidates = append(candidates, "/dev/"+name)
	}
	candidates = append(candidates, "/dev/block/"+majmin)
	if ents, err := os.ReadDir("/dev"); err == nil {
		for _, e := range ents {
			if e.Type()&os.ModeDevice != 0 && e.Type()&os.ModeCharDevice == 0 {
				candidates = append(candidates, filepath.Join("/dev", e.Name()))
			}
		}
	}
	var openErr error
	for _, p := range candidates {
		f, err := os.OpenFile(p, os.O_RDONLY, 0)
		if err != nil {
			if !os.IsNotExist(err) && openErr == nil {
				openErr = err
			}
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == rdev {
			return f, nil
		}
		f.Close()
	}
	if openErr != nil {
		return nil, fmt.Errorf("block device %s: %w", majmin, openErr)
	}
	return nil, fmt.Errorf("no node for block device %s in /dev", majmin)
}

// devName returns DEVNAME from a sysfs uevent file, "" if it cannot.
func devName(uevent string) string {
	b, err := os.ReadFile(uevent)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "DEVNAME="); ok && v != "" && !strings.Contains(v, "..") {
			return v
		}
	}
	return ""
}
