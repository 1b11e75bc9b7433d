#!/bin/sh
# banger-network-bootstrap: set up the guest's network from the kernel's
#   ip=client:server:gw:netmask:hostname:device:autoconf:dns0:dns1
# argument (the kernel's admin-guide/nfs/nfsroot document describes the form).
# Installed by ext4pack and run by banger-network.service.
#
# It is idempotent: a kernel built with CONFIG_IP_PNP may already have applied
# ip=, so an address or a route that is already there is left as it is. With
# no ip= argument it changes nothing and exits 0.
#
# Tests move the paths it reads and writes with these variables:
#   BANGER_PROC        procfs, for the hostname (default /proc)
#   BANGER_CMDLINE     kernel command line (default $BANGER_PROC/cmdline)
#   BANGER_SYS         sysfs, to find the interface (default /sys)
#   BANGER_ROOT        root of /etc/hostname and /etc/resolv.conf (default /)
#   BANGER_IFACE_WAIT  seconds to wait for the interface to appear (default 10)
#   BANGER_INIT_BIN    ext4pack-init, whose "network" subcommand configures
#                      the interface where there is neither ip nor busybox
#                      (default /usr/local/sbin/ext4pack-init)

set -eu
umask 022

proc=${BANGER_PROC:-/proc}
cmdline=${BANGER_CMDLINE:-$proc/cmdline}
sys=${BANGER_SYS:-/sys}
root=${BANGER_ROOT:-/}
root=${root%/}
wait_max=${BANGER_IFACE_WAIT:-10}
init_bin=${BANGER_INIT_BIN:-/usr/local/sbin/ext4pack-init}
nl='
'

log() { printf 'banger-network-bootstrap: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# is_ipv4 ADDR succeeds if ADDR is a dotted quad of decimal octets.
is_ipv4() {
	case $1 in
	'' | *[!0-9.]* | .* | *. | *..*) return 1 ;;
	esac
	# Only digits and dots are left, so the unquoted split below cannot glob.
	old_ifs=$IFS
	IFS=.
	# shellcheck disable=SC2086
	set -- $1
	IFS=$old_ifs
	[ $# -eq 4 ] || return 1
	for octet; do
		[ ${#octet} -le 3 ] && [ "$octet" -le 255 ] || return 1
	done
}

# mask_to_prefix MASK prints the prefix length of MASK, which is either a
# length (24) or dotted (255.255.255.0). A mask with holes is an error.
mask_to_prefix() {
	case $1 in
	*[!0-9]*) ;;
	?*)
		if [ ${#1} -le 2 ] && [ "$1" -le 32 ]; then
			echo "$1"
			return 0
		fi
		return 1
		;;
	esac
	is_ipv4 "$1" || return 1
	old_ifs=$IFS
	IFS=.
	# shellcheck disable=SC2086
	set -- $1
	IFS=$old_ifs
	bits=0
	partial=no
	for octet; do
		case $octet in
		255) n=8 ;; 254) n=7 ;; 252) n=6 ;; 248) n=5 ;; 240) n=4 ;;
		224) n=3 ;; 192) n=2 ;; 128) n=1 ;; 0) n=0 ;;
		*) return 1 ;;
		esac
		# After an octet that is not all ones, every bit must be zero.
		if [ "$partial" = yes ] && [ "$n" -ne 0 ]; then
			return 1
		fi
		if [ "$n" -lt 8 ]; then
			partial=yes
		fi
		bits=$((bits + n))
	done
	echo "$bits"
}

# classful_prefix ADDR prints the prefix length the kernel assumes when ip=
# gives no netmask: that of the address's class A, B or C.
classful_prefix() {
	first=${1%%.*}
	if [ "$first" -lt 128 ]; then
		echo 8
	elif [ "$first" -lt 192 ]; then
		echo 16
	elif [ "$first" -lt 224 ]; then
		echo 24
	else
		return 1
	fi
}

# prefix_to_mask LEN prints LEN as a dotted mask, which ifconfig needs.
prefix_to_mask() {
	left=$1
	mask=
	for _ in 1 2 3 4; do
		if [ "$left" -ge 8 ]; then
			octet=255
			left=$((left - 8))
		else
			octet=$((256 - (1 << (8 - left))))
			left=0
		fi
		mask=${mask:+$mask.}$octet
	done
	echo "$mask"
}

# load_nic loads virtio_net once, where modprobe exists: Firecracker's
# kernels have it built in, a distro kernel without udev (no systemd) has
# nothing else that loads it. A failure is not an error: the wait says it.
nic_loaded=no
load_nic() {
	if [ "$nic_loaded" = yes ]; then
		return 0
	fi
	nic_loaded=yes
	if command -v modprobe >/dev/null 2>&1; then
		modprobe -q virtio_net 2>/dev/null || :
	fi
}

# find_iface prints the first interface, in name order, that is backed by a
# device, which skips lo and virtual ones such as sit0. It waits for one to
# appear, since virtio_net may still be probing.
find_iface() {
	waited=0
	while :; do
		for path in "$sys"/class/net/*; do
			name=${path##*/}
			if [ "$name" != lo ] && [ -e "$path/device" ]; then
				echo "$name"
				return 0
			fi
		done
		if [ "$waited" -ge "$wait_max" ]; then
			return 1
		fi
		load_nic
		sleep 1
		waited=$((waited + 1))
	done
}

# wait_iface NAME waits for the interface NAME to appear.
wait_iface() {
	waited=0
	while [ ! -e "$sys/class/net/$1" ]; do
		load_nic
		if [ "$waited" -ge "$wait_max" ]; then
			return 1
		fi
		sleep 1
		waited=$((waited + 1))
	done
}

# write_file PATH CONTENT replaces PATH with CONTENT through a rename, so a
# reader never sees half a file. A symlink at PATH is replaced too: following
# systemd-resolved's resolv.conf link would put the file in /run, where
# resolved overwrites it.
write_file() {
	tmp=$1.banger-tmp
	printf '%s' "$2" >"$tmp" || die "cannot write $tmp"
	mv -f "$tmp" "$1" || die "cannot replace $1"
}

# busybox_has APPLET succeeds if the busybox in PATH has APPLET.
busybox_has() {
	case "$nl$applets$nl" in
	*"$nl$1$nl"*) return 0 ;;
	esac
	return 1
}

# ipc runs ip, or busybox's applet where there is no iproute2. The commands
# used here are the subset that both understand.
ipc() {
	if [ "$tool" = ip ]; then
		ip "$@"
	else
		busybox ip "$@"
	fi
}

configure_with_ip() {
	ipc link set "$dev" up || die "cannot bring $dev up"
	# busybox ip has no "addr replace", so look before adding: adding an
	# address the kernel already set fails with "File exists".
	addrs=$(ipc addr show dev "$dev") || die "cannot list the addresses of $dev"
	case $addrs in
	*"inet $client/$prefix "*) log "$dev already has $client/$prefix" ;;
	# brd + sets the broadcast address from the prefix, as the kernel's own
	# ip= handling and ifconfig do.
	*) ipc addr add "$client/$prefix" brd + dev "$dev" || die "cannot add $client/$prefix to $dev" ;;
	esac
	if [ -n "$gw" ]; then
		ipc route replace default via "$gw" dev "$dev" || die "cannot set the default route via $gw"
	fi
}

configure_with_ifconfig() {
	# ifconfig sets the primary address rather than adding one, so running it
	# again with the same values changes nothing.
	busybox ifconfig "$dev" "$client" netmask "$(prefix_to_mask "$prefix")" up ||
		die "cannot configure $dev"
	if [ -z "$gw" ]; then
		return 0
	fi
	routes=$(busybox route -n) || die "cannot list the routes"
	other=no
	while read -r dest via genmask _; do
		if [ "$dest" = 0.0.0.0 ] && [ "$genmask" = 0.0.0.0 ]; then
			if [ "$via" = "$gw" ]; then
				log "the default route via $gw is already there"
				return 0
			fi
			other=yes
		fi
	done <<EOF
$routes
EOF
	if [ "$other" = yes ]; then
		busybox route del default || die "cannot remove the old default route"
	fi
	busybox route add default gw "$gw" "$dev" || die "cannot set the default route via $gw"
}

if [ ! -r "$cmdline" ]; then
	log "cannot read $cmdline; nothing to do"
	exit 0
fi
line=
read -r line <"$cmdline" || true

# The last ip= wins, as in the kernel, and words after "--" belong to init.
# nfsaddrs= is the kernel's older name for ip=.
value=
set -f
for word in $line; do
	case $word in
	--) break ;;
	ip=*) value=${word#ip=} ;;
	nfsaddrs=*) value=${word#nfsaddrs=} ;;
	esac
done
set +f

if [ -z "$value" ]; then
	log "no ip= on the kernel command line; nothing to do"
	exit 0
fi
case $value in
*:*) ;;
*)
	# ip=dhcp, ip=on, ip=off and the like: the kernel or a DHCP client does it.
	log "ip=$value leaves configuration to the kernel; nothing to do"
	exit 0
	;;
esac

IFS=: read -r client _ gw mask host dev _ dns0 dns1 _ <<EOF
$value
EOF

for field in "client:$client" "gateway:$gw" "dns0:$dns0" "dns1:$dns1"; do
	addr=${field#*:}
	if [ -n "$addr" ] && ! is_ipv4 "$addr"; then
		die "ip=: the ${field%%:*} '$addr' is not an IPv4 address"
	fi
done

if [ -n "$host" ]; then
	write_file "$root/etc/hostname" "$host$nl"
	printf '%s' "$host" >"$proc/sys/kernel/hostname" || die "cannot set the hostname"
	log "hostname $host"
fi

if [ -n "$dns0$dns1" ]; then
	conf="# Written by banger-network-bootstrap from the kernel ip= argument.$nl"
	for ns in "$dns0" "$dns1"; do
		if [ -n "$ns" ]; then
			conf="${conf}nameserver $ns$nl"
		fi
	done
	write_file "$root/etc/resolv.conf" "$conf"
	log "nameservers:${dns0:+ $dns0}${dns1:+ $dns1}"
fi

if [ -z "$client" ]; then
	log "ip= gives no client address; the interface is left alone"
	exit 0
fi

if [ -n "$mask" ]; then
	prefix=$(mask_to_prefix "$mask") || die "ip=: bad netmask '$mask'"
else
	prefix=$(classful_prefix "$client") || die "ip=: no netmask, and $client has no class"
fi

if [ -n "$dev" ]; then
	wait_iface "$dev" || die "no interface $dev under $sys/class/net"
else
	dev=$(find_iface) || die "no network interface under $sys/class/net"
fi

if command -v ip >/dev/null 2>&1; then
	tool=ip
elif command -v busybox >/dev/null 2>&1; then
	applets=$(busybox --list 2>/dev/null) || applets=
	if busybox_has ip; then
		tool=busybox-ip
	elif busybox_has ifconfig && busybox_has route; then
		tool=busybox-ifconfig
	else
		die "busybox has neither ip nor ifconfig and route"
	fi
elif [ -x "$init_bin" ]; then
	tool=ext4pack-init
else
	die "neither ip (iproute2) nor busybox nor $init_bin is installed"
fi

if [ "$tool" = ext4pack-init ]; then
	# Its netlink code does what ip would, idempotently, from the same
	# command line.
	"$init_bin" network --cmdline "$cmdline" --sys "$sys" || die "$init_bin network failed"
elif [ "$tool" = busybox-ifconfig ]; then
	configure_with_ifconfig
else
	configure_with_ip
fi
log "$dev is $client/$prefix${gw:+ via $gw} (with $tool)"
