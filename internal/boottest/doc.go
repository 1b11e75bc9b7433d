// Package boottest is ext4pack's boot test (issue 7): an image made from a
// real Debian rootfs boots as a VM's root disk under qemu, and a checker
// inside the guest says whether the guest got what the image promised.
//
// The flow, all of it in TestBoot:
//
//  1. A base rootfs tar: `debootstrap --variant=minbase
//     --include=systemd-sysv,iproute2 bookworm` from the Debian mirror apt
//     is configured with, tarred with GNU tar (cached), or the tar named by
//     EXT4PACK_BOOT_ROOTFS_TAR.
//  2. A kernel with no initramfs: Debian's linux-image-*-cloud-amd64, which
//     has NVMe and ext4 built in, fetched with apt-get download (cached).
//  3. The test's rootfs tar: the base tar plus the kernel's modules (virtio_net
//     is a module), a modules-load.d entry for virtio, an empty
//     /etc/machine-id, and the checker (guest/boottest-check.sh and its unit).
//     A negative control edits this tar (see the cases in TestBoot).
//  4. ext4pack make-bundle turns it into a bundle with the banger guest
//     files, and rootfs.ext4 is taken out of it with the bundle package
//     (buildRootfsImage).
//  5. qemu boots the image: TCG unless the CPU has vmx or svm. The checker
//     prints one line per check and a verdict on the second serial port and
//     powers off; the host reads that log and the kernel's console log.
//  6. The host checks the verdict, every EXT4-fs line the kernel printed,
//     and `e2fsck -fn` on the image after the guest shut down.
//
// Environment:
//
//	EXT4PACK_BOOT_TEST=1        run the boot test (also run when CI is set;
//	                            EXT4PACK_BOOT_TEST=0 never runs it)
//	EXT4PACK_CACHE=DIR          where downloads are kept
//	                            (default: the user cache dir/ext4pack-boottest,
//	                            ~/.cache/ext4pack-boottest on Linux)
//	EXT4PACK_BOOT_ROOTFS_TAR=F  use F as the base rootfs tar instead of debootstrap
//	EXT4PACK_BOOT_BANGER=0      leave out the banger guest files and their checks
//	EXT4PACK_BOOT_TIMEOUT=D     how long one boot may take (Go duration;
//	                            default 240s under TCG, 120s under KVM)
//	EXT4PACK_BIN=PATH           use this ext4pack binary instead of building one
//	EXT4PACK_BOOT_LOGS=DIR      keep each boot's serial logs in DIR
//	                            (CASE-console.log, CASE-results.log)
//
// Outside CI a missing tool or root skips the test and says why; with CI set
// it fails, so a CI run cannot skip the boot silently.
package boottest
