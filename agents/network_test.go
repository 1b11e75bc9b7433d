package agents

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const netScript = "banger-network-bootstrap.sh"

// A typical Firecracker guest: 172.16.0.2/30 on eth0, gateway .1.
const (
	fcIP       = "ip=172.16.0.2::172.16.0.1:255.255.255.252:vm1:eth0:off:1.1.1.1:8.8.8.8"
	fcResolv   = "# Written by banger-network-bootstrap from the kernel ip= argument.\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n"
	routeTable = `Kernel IP routing table
Destination     Gateway         Genmask         Flags Metric Ref    Use Iface`
)

var fcWithIP = []string{
	"ip link set eth0 up",
	"ip addr show dev eth0",
	"ip addr add 172.16.0.2/30 brd + dev eth0",
	"ip route replace default via 172.16.0.1 dev eth0",
}

func TestNetworkBootstrap(t *testing.T) {
	type files struct{ hostname, kernelHostname, resolv string }
	tests := []struct {
		name    string
		cmdline string
		ip      bool     // a stub ip is in PATH
		initBin bool     // a stub ext4pack-init is BANGER_INIT_BIN
		applets string   // a stub busybox with these applets is in PATH
		env     []string // STUB_* settings
		ifaces  []string // under /sys/class/net; "name-" has no device link
		code    int
		calls   []string
		files   files  // "" means untouched
		stderr  string // a substring of stderr
	}{
		{
			name:    "no ip=",
			cmdline: "console=ttyS0 reboot=k panic=1 root=/dev/vda rw",
			ip:      true, ifaces: []string{"eth0"},
			stderr: "nothing to do",
		},
		{
			name:    "empty command line",
			cmdline: "",
			ip:      true,
		},
		{
			name:    "dhcp",
			cmdline: "root=/dev/vda ip=dhcp",
			ip:      true, ifaces: []string{"eth0"},
			stderr: "leaves configuration to the kernel",
		},
		{
			name:    "static with iproute2",
			cmdline: "console=ttyS0 " + fcIP + " root=/dev/vda",
			ip:      true, ifaces: []string{"lo", "eth0"},
			calls: fcWithIP,
			files: files{"vm1\n", "vm1", fcResolv},
		},
		{
			name:    "already applied by the kernel (IP_PNP)",
			cmdline: fcIP,
			ip:      true, ifaces: []string{"eth0"},
			env: []string{"STUB_ADDRS=2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500\n" +
				"    inet 172.16.0.2/30 brd 172.16.0.3 scope global eth0"},
			calls: []string{
				"ip link set eth0 up",
				"ip addr show dev eth0",
				"ip route replace default via 172.16.0.1 dev eth0",
			},
			files:  files{"vm1\n", "vm1", fcResolv},
			stderr: "eth0 already has 172.16.0.2/30",
		},
		{
			name:    "a longer address is not the same address",
			cmdline: fcIP,
			ip:      true, ifaces: []string{"eth0"},
			env:   []string{"STUB_ADDRS=    inet 172.16.0.22/30 scope global eth0"},
			calls: fcWithIP,
			files: files{"vm1\n", "vm1", fcResolv},
		},
		{
			name:    "prefix length and no device",
			cmdline: "ip=10.0.2.15::10.0.2.2:24::::",
			ip:      true, ifaces: []string{"lo", "dummy0-", "eth0", "eth1"},
			calls: []string{
				"ip link set eth0 up",
				"ip addr show dev eth0",
				"ip addr add 10.0.2.15/24 brd + dev eth0",
				"ip route replace default via 10.0.2.2 dev eth0",
			},
		},
		{
			name:    "no netmask takes the class",
			cmdline: "ip=10.1.2.3:::::eth1:none",
			ip:      true, ifaces: []string{"eth0", "eth1"},
			calls: []string{
				"ip link set eth1 up",
				"ip addr show dev eth1",
				"ip addr add 10.1.2.3/8 brd + dev eth1",
			},
		},
		{
			name:    "last ip= wins and init's arguments do not count",
			cmdline: "ip=10.9.9.9::::::off ip=192.168.7.2:::255.255.0.0::eth0:off -- ip=1.2.3.4::::::",
			ip:      true, ifaces: []string{"eth0"},
			calls: []string{
				"ip link set eth0 up",
				"ip addr show dev eth0",
				"ip addr add 192.168.7.2/16 brd + dev eth0",
			},
		},
		{
			name:    "nfsaddrs= is ip=",
			cmdline: "nfsaddrs=192.168.7.2:::32::eth0:off",
			ip:      true, ifaces: []string{"eth0"},
			calls: []string{
				"ip link set eth0 up",
				"ip addr show dev eth0",
				"ip addr add 192.168.7.2/32 brd + dev eth0",
			},
		},
		{
			name:    "hostname and DNS only",
			cmdline: "ip=::::box::off:9.9.9.9",
			ip:      true, ifaces: []string{"eth0"},
			files:  files{"box\n", "box", "# Written by banger-network-bootstrap from the kernel ip= argument.\nnameserver 9.9.9.9\n"},
			stderr: "no client address",
		},
		{
			name:    "busybox ip",
			cmdline: fcIP,
			applets: "sh ip ifconfig route", ifaces: []string{"eth0"},
			calls: []string{
				"busybox --list",
				"busybox ip link set eth0 up",
				"busybox ip addr show dev eth0",
				"busybox ip addr add 172.16.0.2/30 brd + dev eth0",
				"busybox ip route replace default via 172.16.0.1 dev eth0",
			},
			files: files{"vm1\n", "vm1", fcResolv},
		},
		{
			name:    "busybox ifconfig and route",
			cmdline: fcIP,
			applets: "sh ifconfig route", ifaces: []string{"eth0"},
			env: []string{"STUB_ROUTES=" + routeTable},
			calls: []string{
				"busybox --list",
				"busybox ifconfig eth0 172.16.0.2 netmask 255.255.255.252 up",
				"busybox route -n",
				"busybox route add default gw 172.16.0.1 eth0",
			},
			files: files{"vm1\n", "vm1", fcResolv},
		},
		{
			name:    "busybox route already there",
			cmdline: "ip=10.0.0.5::10.0.0.1:20::eth0:off",
			applets: "ifconfig route", ifaces: []string{"eth0"},
			env: []string{"STUB_ROUTES=" + routeTable + `
0.0.0.0         10.0.0.1        0.0.0.0         UG    0      0        0 eth0
10.0.0.0        0.0.0.0         255.255.240.0   U     0      0        0 eth0`},
			calls: []string{
				"busybox --list",
				"busybox ifconfig eth0 10.0.0.5 netmask 255.255.240.0 up",
				"busybox route -n",
			},
		},
		{
			name:    "busybox replaces another default route",
			cmdline: "ip=10.0.0.5::10.0.0.1:255.255.255.128::eth0:off",
			applets: "ifconfig route", ifaces: []string{"eth0"},
			env: []string{"STUB_ROUTES=" + routeTable + `
0.0.0.0         10.0.0.99       0.0.0.0         UG    0      0        0 eth0`},
			calls: []string{
				"busybox --list",
				"busybox ifconfig eth0 10.0.0.5 netmask 255.255.255.128 up",
				"busybox route -n",
				"busybox route del default",
				"busybox route add default gw 10.0.0.1 eth0",
			},
		},
		{
			name:    "neither ip nor busybox",
			cmdline: fcIP, ifaces: []string{"eth0"},
			code:   1,
			files:  files{"vm1\n", "vm1", fcResolv},
			stderr: "neither ip (iproute2) nor busybox",
		},
		{
			name:    "ext4pack-init where there is neither ip nor busybox",
			cmdline: fcIP, initBin: true, ifaces: []string{"eth0"},
			calls:  []string{"ext4pack-init network --cmdline CMDLINE --sys SYS"},
			files:  files{"vm1\n", "vm1", fcResolv},
			stderr: "eth0 is 172.16.0.2/30 via 172.16.0.1 (with ext4pack-init)",
		},
		{
			name:    "ext4pack-init fails",
			cmdline: fcIP, initBin: true, ifaces: []string{"eth0"},
			env:    []string{"STUB_FAIL=ext4pack-init"},
			code:   1,
			calls:  []string{"ext4pack-init network --cmdline CMDLINE --sys SYS"},
			files:  files{"vm1\n", "vm1", fcResolv},
			stderr: "network failed",
		},
		{
			name:    "busybox without network applets",
			cmdline: fcIP, applets: "sh ls", ifaces: []string{"eth0"},
			code:   1,
			calls:  []string{"busybox --list"},
			files:  files{"vm1\n", "vm1", fcResolv},
			stderr: "busybox has neither ip nor ifconfig and route",
		},
		{
			name:    "ip fails",
			cmdline: fcIP, ip: true, ifaces: []string{"eth0"},
			env:    []string{"STUB_FAIL=addr add"},
			code:   1,
			calls:  fcWithIP[:3],
			files:  files{"vm1\n", "vm1", fcResolv},
			stderr: "cannot add 172.16.0.2/30 to eth0",
		},
		{
			name:    "missing device",
			cmdline: "ip=172.16.0.2::172.16.0.1:30::eth9:off",
			ip:      true, ifaces: []string{"eth0"},
			code:   1,
			stderr: "no interface eth9",
		},
		{
			name:    "no device at all",
			cmdline: "ip=172.16.0.2::172.16.0.1:30:::off",
			ip:      true, ifaces: []string{"lo", "sit0-"},
			code:   1,
			stderr: "no network interface",
		},
		{
			name:    "bad netmask",
			cmdline: "ip=172.16.0.2::172.16.0.1:255.0.255.0::eth0:off",
			ip:      true, ifaces: []string{"eth0"},
			code:   1,
			stderr: "bad netmask '255.0.255.0'",
		},
		{
			name:    "prefix too long",
			cmdline: "ip=172.16.0.2::172.16.0.1:33::eth0:off",
			ip:      true, ifaces: []string{"eth0"},
			code:   1,
			stderr: "bad netmask '33'",
		},
		{
			name:    "bad client",
			cmdline: "ip=172.16.0.256::172.16.0.1:24::eth0:off",
			ip:      true, ifaces: []string{"eth0"},
			code:   1,
			stderr: "the client '172.16.0.256' is not an IPv4 address",
		},
		{
			name:    "bad DNS",
			cmdline: "ip=172.16.0.2::172.16.0.1:24::eth0:off:dns.example",
			ip:      true, ifaces: []string{"eth0"},
			code:   1,
			stderr: "the dns0 'dns.example' is not an IPv4 address",
		},
		{
			name:    "glob in the gateway",
			cmdline: "ip=172.16.0.2::*:24::eth0:off",
			ip:      true, ifaces: []string{"eth0"},
			code:   1,
			stderr: "the gateway '*' is not an IPv4 address",
		},
		{
			name:    "class D address with no netmask",
			cmdline: "ip=224.0.0.5::::::off",
			ip:      true, ifaces: []string{"eth0"},
			code:   1,
			stderr: "has no class",
		},
	}
	for _, sh := range shells(t) {
		for _, tc := range tests {
			t.Run(sh.name+"/"+tc.name, func(t *testing.T) {
				g := newGuestEnv(t)
				mustWrite(t, g.proc+"/cmdline", tc.cmdline+"\n")
				if tc.ip {
					g.stub(t, "ip", stubIP)
				}
				if tc.applets != "" {
					g.stub(t, "busybox", stubBusybox)
				}
				var extra []string
				if tc.initBin {
					g.stub(t, "ext4pack-init", stubInit)
					extra = append(extra, "BANGER_INIT_BIN="+filepath.Join(g.bin, "ext4pack-init"),
						"STUB_CMDLINE="+g.proc+"/cmdline", "STUB_SYS="+g.sys)
				}
				for _, name := range tc.ifaces {
					base, virtual := strings.CutSuffix(name, "-")
					g.iface(t, base, !virtual)
				}
				env := append(append([]string{"STUB_APPLETS=" + tc.applets}, tc.env...), extra...)
				code, calls, stderr := g.run(t, sh, netScript, env...)
				if code != tc.code {
					t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
				}
				if !slices.Equal(calls, tc.calls) {
					t.Errorf("calls:\n got  %q\n want %q\nstderr:\n%s", calls, tc.calls, stderr)
				}
				if !strings.Contains(stderr, tc.stderr) {
					t.Errorf("stderr %q does not contain %q", stderr, tc.stderr)
				}
				checkFile(t, g.root+"/etc/hostname", tc.files.hostname)
				checkFile(t, g.root+"/etc/resolv.conf", tc.files.resolv)
				want := tc.files.kernelHostname
				if want == "" {
					want = "localhost"
				}
				checkFile(t, g.proc+"/sys/kernel/hostname", want)
				left, err := filepath.Glob(g.root + "/etc/*.banger-tmp")
				if err != nil || len(left) > 0 {
					t.Errorf("temporary files left: %v %v", left, err)
				}
			})
		}
	}
}

// checkFile checks that name is a regular file holding want, or is absent
// when want is "".
func checkFile(t *testing.T, name, want string) {
	t.Helper()
	fi, err := os.Lstat(name)
	if want == "" {
		if err == nil {
			t.Errorf("%s was written", name)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Errorf("%s is %v, want a 0644 regular file", name, fi.Mode())
	}
	if got := readFile(t, name); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

// TestNetworkBootstrapTwice runs the script twice in one guest, as a kernel
// with IP_PNP plus the unit would: the second run must succeed and leave the
// same files.
func TestNetworkBootstrapTwice(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			g := newGuestEnv(t)
			mustWrite(t, g.proc+"/cmdline", fcIP+"\n")
			g.stub(t, "ip", stubIP)
			g.iface(t, "eth0", true)
			for run := 1; run <= 2; run++ {
				env := []string{}
				if run == 2 {
					env = append(env, "STUB_ADDRS=    inet 172.16.0.2/30 brd 172.16.0.3 scope global eth0")
				}
				code, _, stderr := g.run(t, sh, netScript, env...)
				if code != 0 {
					t.Fatalf("run %d: exit %d\n%s", run, code, stderr)
				}
				checkFile(t, g.root+"/etc/hostname", "vm1\n")
				checkFile(t, g.root+"/etc/resolv.conf", fcResolv)
			}
		})
	}
}

// TestNetworkBootstrapReplacesResolvLink checks that a resolv.conf symlink
// (systemd-resolved's, say) becomes a file, and that its target is untouched.
func TestNetworkBootstrapReplacesResolvLink(t *testing.T) {
	g := newGuestEnv(t)
	mustWrite(t, g.proc+"/cmdline", fcIP+"\n")
	g.stub(t, "ip", stubIP)
	g.iface(t, "eth0", true)
	stub := g.root + "/run/systemd/resolve/stub-resolv.conf"
	mustWrite(t, stub, "nameserver 127.0.0.53\n")
	if err := os.Symlink("../run/systemd/resolve/stub-resolv.conf", g.root+"/etc/resolv.conf"); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := g.run(t, shells(t)[0], netScript); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	checkFile(t, g.root+"/etc/resolv.conf", fcResolv)
	checkFile(t, stub, "nameserver 127.0.0.53\n")
}
