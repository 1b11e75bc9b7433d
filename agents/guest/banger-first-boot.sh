#!/bin/sh
# banger-first-boot: one-time set-up of a guest booted from an image that many
# guests share, so that they do not share an identity. Installed by ext4pack
# and run by banger-first-boot.service while the marker
# /var/lib/banger/first-boot-pending exists. The marker is removed only after
# every step succeeded, so a failed run is tried again at the next boot.
#
# Tests move the paths it reads and writes with these variables:
#   BANGER_ROOT  root of /etc and /var (default /)
#   BANGER_PROC  procfs, for a fresh UUID (default /proc)

set -eu
umask 022

root=${BANGER_ROOT:-/}
root=${root%/}
proc=${BANGER_PROC:-/proc}
marker=$root/var/lib/banger/first-boot-pending

log() { printf 'banger-first-boot: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# machine_id gives the guest a machine-id if /etc/machine-id is missing or
# empty. "uninitialized" is systemd's own first-boot value and counts as empty.
machine_id() {
	file=$root/etc/machine-id
	current=
	if [ -f "$file" ]; then
		read -r current <"$file" || true
	fi
	case $current in
	'' | uninitialized) ;;
	*) return 0 ;;
	esac

	if command -v systemd-machine-id-setup >/dev/null 2>&1; then
		if [ -n "$root" ]; then
			systemd-machine-id-setup --root="$root" || die "systemd-machine-id-setup failed"
		else
			systemd-machine-id-setup || die "systemd-machine-id-setup failed"
		fi
		log "machine-id set by systemd-machine-id-setup"
		return 0
	fi

	# Without systemd's tool, derive it as systemd does from a random UUID:
	# 32 lowercase hex digits, no dashes.
	uuid=
	read -r uuid <"$proc/sys/kernel/random/uuid" || true
	id=
	rest=$uuid
	while [ -n "$rest" ]; do
		char=${rest%"${rest#?}"}
		rest=${rest#?}
		case $char in
		[0-9a-f]) id=$id$char ;;
		-) ;;
		*) die "unexpected character in the kernel's UUID '$uuid'" ;;
		esac
	done
	if [ ${#id} -ne 32 ]; then
		die "the kernel's UUID '$uuid' does not give 32 hex digits"
	fi
	tmp=$file.banger-tmp
	printf '%s\n' "$id" >"$tmp" || die "cannot write $tmp"
	chmod 0444 "$tmp" || die "cannot chmod $tmp"
	mv -f "$tmp" "$file" || die "cannot replace $file"
	log "machine-id set from a random UUID"
}

# ssh_host_keys makes new SSH host keys when sshd is installed. Keys already
# in the image are removed first: a distro's openssh-server package makes
# them when the image is built, and every guest would then share them.
ssh_host_keys() {
	if ! command -v sshd >/dev/null 2>&1; then
		return 0
	fi
	rm -f "$root"/etc/ssh/ssh_host_*_key "$root"/etc/ssh/ssh_host_*_key.pub ||
		die "cannot remove the old SSH host keys"
	if [ -n "$root" ]; then
		ssh-keygen -A -f "$root" || die "ssh-keygen -A failed"
	else
		ssh-keygen -A || die "ssh-keygen -A failed"
	fi
	log "new SSH host keys"
}

machine_id
ssh_host_keys
rm -f "$marker" || die "cannot remove $marker"
log "done"
