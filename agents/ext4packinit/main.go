// Command ext4pack-init is the init ext4pack installs as /sbin/init in an
// image that has none of its own (SPEC "Guest init systems"): most container
// images. As PID 1 it
//
//   - mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /run and /tmp
//     where they are not mount points yet;
//   - brings up lo, and the network the kernel's ip= argument asks for,
//     through netlink (no shell, no ip binary); sets the hostname and writes
//     /etc/resolv.conf;
//   - runs the first-boot set-up once, while /var/lib/banger/first-boot-pending
//     exists: the banger-first-boot script where there is a /bin/sh, else its
//     steps itself (an empty /etc/machine-id is filled, the marker removed);
//   - starts the vsock agent as nobody and restarts it whenever it dies;
//   - runs the image's workload from /etc/banger/image-config.json
//     (Entrypoint + Cmd, Env, WorkingDir, User), its output on the console,
//     and logs how it ended;
//   - reaps every orphan;
//   - on SIGTERM, SIGINT (ctrl-alt-del) or SIGPWR sends TERM to every
//     process, KILL after 10 s, syncs, remounts / read-only and powers off.
//
// A step that fails is logged on the console and the others go on. It never
// exits: PID 1 exiting is a kernel panic.
//
// Run as any other PID it is a tool:
//
//	ext4pack-init network [--cmdline FILE] [--sys DIR]
//	    applies ip= from FILE (default /proc/cmdline) as PID 1 does; the
//	    banger network bootstrap calls it in a guest with neither ip nor
//	    busybox
//	ext4pack-init grow [DIR]
//	    grows the ext4 filesystem mounted at DIR (default /) online to its
//	    whole block device (EXT4_IOC_RESIZE_FS), printing one line when it
//	    did and nothing when the sizes were equal; the guest's boot runs it
//	    under every init where /etc/banger/grow-root exists
//	ext4pack-init version
//
// ext4pack embeds a build of it for each guest arch, made as the agent is
// (see ../vsockagent), so bundles stay byte-identical:
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false \
//	    -ldflags='-s -w -buildid=' -o agents/bin/ext4pack-init-x86_64 ./agents/ext4packinit
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -buildvcs=false \
//	    -ldflags='-s -w -buildid=' -o agents/bin/ext4pack-init-aarch64 ./agents/ext4packinit
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// version is set at build time with -ldflags '-X main.version=...'.
var version = "dev"

func main() {
	if os.Getpid() == 1 {
		runInit() // never returns
	}
	os.Exit(tool(os.Args[1:], os.Stdout, os.Stderr))
}

// usage is what a mistaken command line prints.
const usage = `usage: ext4pack-init              (as PID 1: the guest's init)
       ext4pack-init network [--cmdline FILE] [--sys DIR]
       ext4pack-init grow [DIR]
       ext4pack-init version
`

// tool runs ext4pack-init as a command, not as init: 0 on success, 1 on
// failure, 2 on a usage error.
func tool(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "ext4pack-init: not PID 1, and no subcommand\n"+usage)
		return 2
	}
	switch args[0] {
	case "version", "--version":
		fmt.Fprintln(stdout, "ext4pack-init", version)
		return 0
	case "network":
		cmdline, sys := "/proc/cmdline", "/sys"
		rest := args[1:]
		for len(rest) > 0 {
			if len(rest) < 2 || (rest[0] != "--cmdline" && rest[0] != "--sys") {
				fmt.Fprint(stderr, "ext4pack-init network: bad arguments\n"+usage)
				return 2
			}
			if rest[0] == "--cmdline" {
				cmdline = rest[1]
			} else {
				sys = rest[1]
			}
			rest = rest[2:]
		}
		return networkTool(cmdline, sys, stderr)
	case "grow":
		switch len(args) {
		case 1:
			return growTool("/", stderr)
		case 2:
			if !strings.HasPrefix(args[1], "-") {
				return growTool(args[1], stderr)
			}
		}
		fmt.Fprint(stderr, "ext4pack-init grow: bad arguments\n"+usage)
		return 2
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ext4pack-init: unknown subcommand %q\n%s", args[0], usage)
	return 2
}
