// Package boottest is ext4pack's boot test (issues 7 and 14): images ext4pack
// makes from real rootfs trees boot as a VM's root disk under qemu, one per
// init system, and a checker inside each guest says whether the guest got
// what the image promised.
//
// The flow, all of it in TestBoot, for each guest of the matrix (guests.go):
//
//  1. A base rootfs tar. Debian ones come from debootstrap recipes
//     (rootfs.go: minbase with systemd-sysv, with sysvinit-core, with
//     sysvinit-core then openrc installed inside, with runit-init, and
//     plain minbase, which has no init), each cached in the boot cache
//     under a name that spells its recipe. The others are composed here
//     (bases.go): Debian's busybox-static with a link per applet and
//     Alpine's inittab, for x86_64 and aarch64; and a distroless-like tree
//     with no shell.
//  2. A kernel: Debian's linux-image-*-cloud for the arch (amd64, arm64),
//     fetched with apt-get download and cached, and a test initramfs built
//     here (initramfs.go, ./rdinit): a static /init that loads virtio_net,
//     vsock and vsock_loopback with what they need, mounts devtmpfs and the
//     root= device and hands over to the image's /sbin/init. It stands in
//     for what a Firecracker kernel builds in and adds nothing to the image.
//  3. The guest's rootfs tar (testrootfs.go): the base, plus a static
//     checker (./checker) with its /etc/boottest.json, the way the guest's
//     init starts it (a systemd unit, an inittab once line, a runit service,
//     or image-config.json's workload under ext4pack-init), and two probe
//     files, one setuid and one owned by 1234:42.
//  4. ext4pack make-bundle makes the bundle, as users do; what it printed
//     about the init and the manifest's guest_init are checked, and
//     rootfs.ext4 is taken out with the bundle package. The guests marked
//     embedded (no-init on x86_64, busybox-aarch64) are made by the binary
//     `make build` produces, with the agent and ext4pack-init built into
//     it, and the image's copies are checked to be those; the others get
//     the guest binaries built here through --agent-bin and --init-bin.
//  5. qemu boots the image (TCG unless the CPU has vmx or svm; the aarch64
//     guest under qemu-system-aarch64), the first time on its file
//     enlarged to a 4 GiB disk, which the guest must grow / to (issue 19).
//     The checker prints one line per check and a verdict on the second
//     serial port (the console on aarch64) and asks the init to power off;
//     for the distroless guest, whose workload is unprivileged, the host
//     sends ctrl-alt-del. The kernel command line's boottest.* arguments
//     ask the checker for a boot's extra checks: boottest.grow=BYTES (/
//     must span the disk, and a file larger than the image of BYTES must
//     fit) and boottest.load=1 (the agent load test).
//  6. The host adds what the console shows (the first boot ran once, no
//     kernel panic, and under ext4pack-init the workload's marker and end
//     and a clean power-off), judges the report, the kernel's EXT4-fs lines
//     and `e2fsck -fn` on the image; after a boot that grows, the console
//     must show the guest's one growth line and the kernel's resize lines,
//     and the image's superblock the disk's block count (grow-once).
//  7. The same image boots again: the first boot must not run a second
//     time, and nothing grows or says so; the no-init guest's reboot also
//     runs the agent load test. Then the negative controls boot: the
//     agent's start link (or inittab line, or binary) removed from the
//     image with debugfs, the growth helper removed (the switch, under
//     ext4pack-init), and for systemd a setuid bit dropped and the
//     first-boot unit masked in the tar; each must fail exactly the checks
//     it breaks. busybox's 64 MiB image also grows to a 1 TiB disk
//     (meta_bg), and distroless boots without a console (console=hvc0,
//     the kernel's log on a third port through earlyprintk).
//
// grow-kernel, beside the guests, boots the kernel with ./growjudge as
// /init: ext4pack-init grow, run twice on seven 64 MiB images on disks
// from 64 MiB to 1 TiB, and e2fsck on each after.
//
// Environment:
//
//	EXT4PACK_BOOT_TEST=1        run the boot test (also run when CI is set;
//	                            EXT4PACK_BOOT_TEST=0 never runs it)
//	EXT4PACK_BOOT_GUESTS=A,B    boot only these guests of the matrix (and
//	                            grow-kernel, the growth judge)
//	EXT4PACK_CACHE=DIR          where downloads and rootfs tars are kept
//	                            (default: the user cache dir/ext4pack-boottest,
//	                            ~/.cache/ext4pack-boottest on Linux)
//	EXT4PACK_BOOT_ROOTFS_TAR=F  use F as the systemd guest's base rootfs tar
//	EXT4PACK_BOOT_TIMEOUT=D     how long one boot may take (Go duration;
//	                            default 300s under TCG, 120s under KVM)
//	EXT4PACK_BIN=PATH           use this ext4pack binary instead of building one
//	                            (not for the embedded guests: `make build`'s)
//	EXT4PACK_BOOT_LOGS=DIR      keep each boot's serial logs in DIR
//	                            (GUEST-BOOT-console.log, GUEST-BOOT-results.log)
//
// Outside CI a missing tool or root skips the test and says why; with CI set
// it fails, so a CI run cannot skip the boot silently.
package boottest
