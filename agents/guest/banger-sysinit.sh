#!/bin/sh
# banger-sysinit: the banger guest set-up for inits without service files of
# their own: a sysinit line in /etc/inittab (busybox, sysvinit) and runit's
# stage 1. Installed by ext4pack. It mounts /proc, /sys and /dev where nothing
# did yet (Alpine's inittab calls an OpenRC that a minirootfs lacks), grows /
# to its block device, applies the kernel's ip= argument, and runs the
# first-boot set-up while its marker is there. A step that fails is reported
# and the others still run: init goes on booting whatever this prints.
# Debian's runit stage 1 passes "start"; busybox's shutdown line passes
# "stop".

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

log() { printf 'banger-sysinit: %s\n' "$*" >&2; }

# With "stop", at shutdown, it only remounts / read-only, so that the ext4
# journal is clean at power-off: busybox's init runs its shutdown lines,
# then kills and powers off, and an inittab such as Alpine's, whose OpenRC a
# minirootfs lacks, has nothing else that would.
if [ "${1:-start}" = stop ]; then
	sync
	mount -o remount,ro / || log "cannot remount / read-only"
	exit 0
fi

# mounted DIR succeeds if DIR is a mount point in /proc/mounts.
mounted() {
	[ -r /proc/mounts ] || return 1
	while read -r _ mnt _; do
		if [ "$mnt" = "$1" ]; then
			return 0
		fi
	done </proc/mounts
	return 1
}

if [ ! -e /proc/self ]; then
	mount -t proc -o nosuid,nodev,noexec proc /proc || log "cannot mount /proc"
fi
mounted /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || log "cannot mount /sys"
mounted /dev || mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || log "cannot mount /dev"
if ! mounted /dev/pts; then
	mkdir -p /dev/pts
	if ! mount -t devpts -o nosuid,noexec,mode=0620,ptmxmode=0666 devpts /dev/pts; then
		log "cannot mount /dev/pts"
	fi
fi

# The vsock transport, where the kernel has it as modules: no systemd reads
# modules-load.d here. A module built in, or absent, is not an error.
if command -v modprobe >/dev/null 2>&1 && [ -r /etc/modules-load.d/banger-vsock.conf ]; then
	while read -r module; do
		case $module in
		'' | '#'*) ;;
		*) modprobe -q "$module" 2>/dev/null || : ;;
		esac
	done </etc/modules-load.d/banger-vsock.conf
fi

# Growth: / to the whole of its block device, where ext4pack left the switch
# (make-bundle without --no-grow). The helper prints one line when it grew /
# and nothing when / already fills the device; a failure is reported and
# boot goes on.
root=${BANGER_ROOT:-}
if [ -e "$root/etc/banger/grow-root" ]; then
	if [ -x "$root/usr/local/sbin/ext4pack-init" ]; then
		"$root/usr/local/sbin/ext4pack-init" grow || log "growing / to its device failed"
	else
		log "/etc/banger/grow-root asks to grow /, but /usr/local/sbin/ext4pack-init is missing"
	fi
fi

/usr/local/libexec/banger-network-bootstrap || log "the network set-up failed"
if [ -e /var/lib/banger/first-boot-pending ]; then
	/usr/local/libexec/banger-first-boot || log "the first-boot set-up failed; it runs again at the next boot"
fi
exit 0
