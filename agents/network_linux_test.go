package agents

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// netnsDriver runs inside a new network namespace (unshare -n). It makes a
// veth pair, runs the script twice (the second run plays a boot where the
// kernel, or an earlier run, has already applied ip=), and prints the result.
// $TOOLS is a PATH that offers the tool under test.
const netnsDriver = `set -e
ip link add bng0 type veth peer name bng1
ip link set bng1 up
PATH=$TOOLS /bin/sh "$SCRIPT"
PATH=$TOOLS /bin/sh "$SCRIPT"
echo "== addresses"
ip -4 -o addr show dev bng0
echo "== routes"
ip -4 route show
`

// TestNetworkBootstrapOnKernel is the oracle for the stub tests: it runs the
// script against a real kernel, in a private network namespace, with the
// real iproute2 and busybox. It needs root, unshare, network namespaces
// and veth, which CI's machine has: without them it skips outside CI and
// fails in CI.
func TestNetworkBootstrapOnKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "a network namespace needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		skipOrFail(t, "unshare is not installed (apt-get install util-linux)")
	}
	if out, err := exec.Command(unshare, "-n", "ip", "link", "add", "probe0", "type", "veth", "peer", "name", "probe1").CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Sprintf("no veth in a new network namespace here: %v %s", err, out))
	}

	tools := map[string]string{"ip": "", "busybox": ""}
	for name := range tools {
		if p, err := exec.LookPath(name); err == nil {
			tools[name] = p
		}
	}
	tests := []struct {
		name  string
		links map[string]string // the PATH: name -> program
		need  string
	}{
		{"iproute2", map[string]string{"ip": tools["ip"]}, "ip"},
		{"busybox ip", map[string]string{"busybox": tools["busybox"]}, "busybox"},
		// A busybox whose --list has no ip, so that ifconfig and route are used.
		{"busybox ifconfig", map[string]string{"busybox-real": tools["busybox"]}, "busybox"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tools[tc.need] == "" {
				skipOrFail(t, tc.need+" is not installed (apt-get install iproute2 busybox)")
			}
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			mustMkdir(t, bin)
			for name, target := range tc.links {
				if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
					t.Fatal(err)
				}
			}
			if _, ok := tc.links["busybox-real"]; ok {
				wrapper := "#!/bin/sh\ncase $1 in --list) printf 'ifconfig\\nroute\\n' ;; *) exec busybox-real \"$@\" ;; esac\n"
				if err := os.WriteFile(filepath.Join(bin, "busybox"), []byte(wrapper), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, tool := range []string{"mv", "sleep"} {
				p, err := exec.LookPath(tool)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
					t.Fatal(err)
				}
			}
			script := filepath.Join(dir, "banger-network-bootstrap")
			if err := os.WriteFile(script, asset(netScript), 0o644); err != nil {
				t.Fatal(err)
			}
			root, proc, sys := filepath.Join(dir, "root"), filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
			mustMkdir(t, root+"/etc")
			// The host's /sys shows the host's namespace, and a veth has no
			// device link anyway: the device is named, and only has to exist.
			mustMkdir(t, sys+"/class/net/bng0")
			mustWrite(t, proc+"/sys/kernel/hostname", "localhost")
			mustWrite(t, proc+"/cmdline", "console=ttyS0 ip=172.16.0.2::172.16.0.1:255.255.255.252:vm1:bng0:off:1.1.1.1\n")

			cmd := exec.Command(unshare, "-n", "/bin/sh", "-c", netnsDriver)
			cmd.Env = append(os.Environ(),
				"TOOLS="+bin, "SCRIPT="+script,
				"BANGER_ROOT="+root, "BANGER_PROC="+proc, "BANGER_SYS="+sys, "BANGER_IFACE_WAIT=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := string(out)
			for _, want := range []string{
				"inet 172.16.0.2/30 brd 172.16.0.3 scope global bng0",
				"default via 172.16.0.1 dev bng0",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("no %q in:\n%s", want, got)
				}
			}
			if n := strings.Count(got, "inet 172.16.0.2/"); n != 1 {
				t.Errorf("%d copies of the address, want 1:\n%s", n, got)
			}
			checkFile(t, root+"/etc/hostname", "vm1\n")
		})
	}
}
