#!/bin/sh
# install-deps.sh: install what `make boot-test` needs and the machine lacks,
# on a Debian-like host (the kernel and the rootfs come from Debian's
# archive through apt). As root it runs apt-get; otherwise it says what to
# install and fails, since the boot test would only skip.
set -eu

have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

if ! have apt-get || ! have dpkg-deb; then
	echo "boot-test: needs a Debian-like host with apt and dpkg: the kernel and the rootfs come from Debian's archive" >&2
	exit 1
fi

need=
have qemu-system-x86_64 || need="$need qemu-system-x86"
have qemu-system-aarch64 || need="$need qemu-system-arm"
have debootstrap || need="$need debootstrap"
have depmod || need="$need kmod"
have e2fsck || need="$need e2fsprogs"
have tar || need="$need tar"
have debugfs || need="$need e2fsprogs"
# The aarch64 guest's kernel and busybox are Debian's arm64 packages, which
# apt fetches only once dpkg knows the architecture.
arm64=yes
case " $(dpkg --print-foreign-architectures | tr '\n' ' ') " in
*" arm64 "*) ;;
*) arm64=no ;;
esac
if [ -z "$need" ] && [ "$arm64" = yes ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	if [ "$arm64" = no ]; then
		echo "boot-test: run: sudo dpkg --add-architecture arm64 && sudo apt-get update" >&2
	fi
	if [ -n "$need" ]; then
		echo "boot-test: missing packages:$need" >&2
		echo "boot-test: run: sudo apt-get install --no-install-recommends$need" >&2
	fi
	exit 1
fi
if [ "$arm64" = no ]; then
	echo "boot-test: adding the arm64 architecture to dpkg, for the aarch64 guest's packages"
	dpkg --add-architecture arm64
fi
apt-get update -qq
if [ -z "$need" ]; then
	exit 0
fi
echo "boot-test: installing$need"
# The names are fixed above, so splitting $need into words is intended.
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
