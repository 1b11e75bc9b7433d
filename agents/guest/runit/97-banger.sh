# Installed by ext4pack. Void's /etc/runit/1 sources every
# /etc/runit/core-services/*.sh in order; by 97 the filesystems are mounted
# read-write and the hostname is set, so the kernel's ip= may override it.
/usr/local/libexec/banger-sysinit
