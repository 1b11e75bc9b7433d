// Command banger-vsock-agent is the guest side of banger. It serves HTTP over
// AF_VSOCK so that the host can ask a guest whether it is up and which ports
// it listens on:
//
//	GET /healthz  200 and "ok\n"
//	GET /ports    the guest's listening TCP and bound UDP sockets, read from
//	              /proc/net/{tcp,tcp6,udp,udp6}, as a JSON list sorted by
//	              proto, port and address:
//	              [{"proto":"tcp","port":22,"address":"0.0.0.0"}, ...]
//
// Usage:
//
//	banger-vsock-agent [--port N] [--user UID:GID] [--version]
//
// --port is the AF_VSOCK port to listen on, 1024 by default (ports below 1024
// need CAP_NET_BIND_SERVICE). --user makes an agent started as root drop to
// that numeric uid and gid, with no supplementary groups, before it does
// anything else: busybox's and sysvinit's inittab have no way of their own to
// start a service unprivileged. Until the guest has a vsock transport, for
// instance while its module is not loaded yet, the agent retries with
// backoff instead of exiting. SIGTERM and SIGINT stop it cleanly, with exit
// status 0. It runs no other program.
//
// ext4pack embeds a build of it for each guest arch. These commands make them
// byte-identical on every machine with the same Go release: no paths, build
// id, VCS stamp or cgo in the output. VERSION is optional ("dev" without it).
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false \
//	    -ldflags='-s -w -buildid= -X main.version=VERSION' \
//	    -o agents/bin/banger-vsock-agent-x86_64 ./agents/vsockagent
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -buildvcs=false \
//	    -ldflags='-s -w -buildid= -X main.version=VERSION' \
//	    -o agents/bin/banger-vsock-agent-aarch64 ./agents/vsockagent
//	go build -tags embedagents -o bin/ext4pack ./cmd/ext4pack
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// version is set at build time with -ldflags '-X main.version=...'.
var version = "dev"

const (
	// defaultPort must equal agents.DefaultVsockPort; a test checks it.
	defaultPort = 1024
	// maxPort is the highest port one can listen on: 1<<32 - 1 is
	// VMADDR_PORT_ANY (linux/vm_sockets.h).
	maxPort = 1<<32 - 2

	// Retry delays. The first retry comes soon, since the vsock module is
	// usually loaded a moment after the agent starts; later ones slow down
	// so that a guest with no vsock at all does not fill its journal.
	minRetry = 250 * time.Millisecond
	maxRetry = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program but for the signals and the exit: 0 on success or
// after ctx ends, 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("banger-vsock-agent", flag.ContinueOnError)
	flags.SetOutput(stderr)
	port := flags.Uint64("port", defaultPort, "AF_VSOCK `port` to listen on (1 to 4294967294)")
	showVersion := flags.Bool("version", false, "print the version and exit")
	user := flags.String("user", "", "drop to `UID:GID` (numbers) before serving")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "banger-vsock-agent: unexpected argument %q\n", flags.Arg(0))
		flags.Usage()
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "banger-vsock-agent", version)
		return 0
	}
	if *port < 1 || *port > maxPort {
		fmt.Fprintf(stderr, "banger-vsock-agent: --port %d is out of range (1 to %d)\n", *port, uint64(maxPort))
		return 2
	}

	// No timestamps: journald adds its own.
	logger := log.New(stderr, "banger-vsock-agent: ", 0)
	if *user != "" {
		uid, gid, err := parseUser(*user)
		if err != nil {
			fmt.Fprintf(stderr, "banger-vsock-agent: --user %q: %v\n", *user, err)
			return 2
		}
		if err := dropPrivileges(uid, gid); err != nil {
			logger.Printf("--user %s: %v", *user, err)
			return 1
		}
	}
	listen := func() (net.Listener, error) { return listenVsock(uint32(*port), logger.Printf) }
	if err := serve(ctx, listen, newHandler("/proc/net"), logger.Printf, minRetry, maxRetry); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}

// parseUser reads --user's UID:GID, both decimal, neither (uid_t)-1.
func parseUser(s string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, errors.New("want UID:GID")
	}
	ids := [2]int{}
	for i, v := range []string{u, g} {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 1<<32-1 {
			return 0, 0, fmt.Errorf("%q is not a numeric id", v)
		}
		ids[i] = int(n)
	}
	return ids[0], ids[1], nil
}
