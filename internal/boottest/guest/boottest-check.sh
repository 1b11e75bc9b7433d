#!/bin/sh
# boottest-check: the guest side of ext4pack's boot test (internal/boottest).
# It belongs to the test's rootfs, never to an image ext4pack makes.
#
# boottest-check.service runs it once multi-user.target is reached. It checks
# what the image must give a booted guest and reports on the second serial
# port, /dev/ttyS1, which nothing else writes to, so that kernel and systemd
# messages on the console cannot break a line in two. Each check prints
#
#   BOOTTEST CHECK <name> <ok|fail> <detail>
#
# and the last line is BOOTTEST PASS or BOOTTEST FAIL. The host reads the
# port's log after qemu exits. The unit powers the guest off when this ends,
# whatever the outcome.
#
# The kernel command line says what to expect:
#   boottest.banger=1     check the banger guest files' services too
#   boottest.addr=A/N     the address banger-network must give eth0
#   boottest.hostname=H   the hostname it must set

set -u

results=/dev/ttyS1
failed=0

# Every line goes to the results port (fd 3) and to standard output, which
# the unit sends to the journal and the console for a person reading the log.
if ! exec 3>"$results"; then
	echo "BOOTTEST FAIL cannot open $results"
	exit 1
fi

say() {
	printf '%s\n' "$*" >&3
	printf '%s\n' "$*"
}

# report NAME ok|fail DETAIL
report() {
	say "BOOTTEST CHECK $1 $2 $3"
	if [ "$2" != ok ]; then
		failed=1
	fi
}

# arg NAME prints the value of boottest.NAME= on the kernel command line.
arg() {
	line=
	read -r line </proc/cmdline || true
	value=
	set -f
	for word in $line; do
		case $word in
		"boottest.$1="*) value=${word#*=} ;;
		esac
	done
	set +f
	printf '%s' "$value"
}

# unit_props UNIT prints the unit's state as one line of KEY=VALUE words.
unit_props() {
	systemctl show -p LoadState -p ActiveState -p SubState -p Result \
		-p ConditionResult -p ExecMainStatus "$1" 2>&1 | tr '\n' ' '
}

# has_all "PROPS" KEY=VALUE... succeeds if PROPS holds every KEY=VALUE.
# (POSIX sh has no local variables, so the names here are its own.)
has_all() {
	has_all_in=" $1 "
	shift
	for kv; do
		case $has_all_in in
		*" $kv "*) ;;
		*) return 1 ;;
		esac
	done
}

# check_mode NAME PATH WANT compares PATH's "uid:gid octal-mode" with WANT.
check_mode() {
	got=$(stat -c '%u:%g %a' "$2" 2>&1) || got="stat failed: $got"
	if [ "$got" = "$3" ]; then
		report "$1" ok "$2 is $got"
	else
		report "$1" fail "$2 is $got, want $3"
	fi
}

# The root filesystem: the last mount of / in the table is the one in use.
fstype=
options=
while read -r _ mnt type opts _; do
	if [ "$mnt" = / ]; then
		fstype=$type
		options=$opts
	fi
done </proc/self/mounts
if [ "$fstype" = ext4 ]; then
	report root-ext4 ok "/ is ext4 ($options)"
else
	report root-ext4 fail "/ is '$fstype', want ext4"
fi

# rw in the options is what the kernel claims; writing a file proves it.
probe=/.boottest-rw-probe
case ",$options," in
*,rw,*)
	if : >"$probe" && rm -f "$probe"; then
		report root-rw ok "/ is mounted rw and a file was written and removed"
	else
		report root-rw fail "/ is mounted rw but $probe cannot be written"
	fi
	;;
*) report root-rw fail "/ is mounted with '$options', want rw" ;;
esac

check_mode passwd-mode /usr/bin/passwd "0:0 4755"
check_mode shadow-mode /etc/shadow "0:42 640"

if [ "$(arg banger)" = 1 ]; then
	props=$(unit_props banger-first-boot.service)
	if has_all "$props" ActiveState=active Result=success ConditionResult=yes ExecMainStatus=0; then
		report first-boot-ran ok "$props"
	else
		report first-boot-ran fail "$props"
	fi

	marker=/var/lib/banger/first-boot-pending
	if [ -e "$marker" ]; then
		report first-boot-marker fail "$marker is still there"
	else
		report first-boot-marker ok "$marker is gone"
	fi

	# With no vsock device the agent keeps retrying, so activating (in a
	# restart) counts as well as active.
	props=$(unit_props banger-vsock-agent.service)
	if has_all "$props" ActiveState=active || has_all "$props" ActiveState=activating; then
		report vsock-agent-state ok "$props"
	else
		report vsock-agent-state fail "$props"
	fi

	agent=/usr/local/bin/banger-vsock-agent
	if version=$("$agent" --version 2>&1); then
		case $version in
		"banger-vsock-agent "*) report vsock-agent-version ok "$version" ;;
		*) report vsock-agent-version fail "$agent --version printed '$version'" ;;
		esac
	else
		report vsock-agent-version fail "$agent --version failed: $version"
	fi

	props=$(unit_props banger-network.service)
	if has_all "$props" ActiveState=active Result=success ExecMainStatus=0; then
		report network-service ok "$props"
	else
		report network-service fail "$props"
	fi

	want=$(arg addr)
	addrs=$(ip -4 -o addr show dev eth0 2>&1) || addrs="ip failed: $addrs"
	case $addrs in
	*" inet $want "*) report network-address ok "eth0 has $want" ;;
	*) report network-address fail "eth0 lacks $want: $(printf '%s' "$addrs" | tr '\n' ' ')" ;;
	esac

	want=$(arg hostname)
	got=
	read -r got </proc/sys/kernel/hostname || true
	if [ "$got" = "$want" ]; then
		report network-hostname ok "hostname is $got"
	else
		report network-hostname fail "hostname is '$got', want '$want'"
	fi
fi

if [ "$failed" = 0 ]; then
	say "BOOTTEST PASS"
else
	say "BOOTTEST FAIL"
fi
