package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestIPArgument(t *testing.T) {
	for _, tc := range []struct {
		cmdline, want string
		found         bool
	}{
		{"console=ttyS0 root=/dev/vda rw", "", false},
		{"ip=1.2.3.4::1.2.3.1:255.255.255.0::eth0:off", "1.2.3.4::1.2.3.1:255.255.255.0::eth0:off", true},
		{"ip=dhcp ip=10.0.0.2:::8::: quiet", "10.0.0.2:::8:::", true},
		{"nfsaddrs=10.0.0.3::::::", "10.0.0.3::::::", true},
		{"ip=10.0.0.2:::8::: -- ip=10.0.0.9:::8:::", "10.0.0.2:::8:::", true},
		{"vip=1.2.3.4 myip=5", "", false},
		{"ip=", "", true},
	} {
		got, found := ipArgument(tc.cmdline)
		if got != tc.want || found != tc.found {
			t.Errorf("%q: got %q %v, want %q %v", tc.cmdline, got, found, tc.want, tc.found)
		}
	}
}

func TestParseIP(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name, value string
		want        ipConfig
		err         string
	}{
		{"firecracker", "172.16.0.2::172.16.0.1:255.255.255.252:vm1:eth0:off:1.1.1.1:8.8.8.8",
			ipConfig{static: true, client: a("172.16.0.2"), gateway: a("172.16.0.1"), prefix: 30, hostname: "vm1",
				device: "eth0", dns: []netip.Addr{a("1.1.1.1"), a("8.8.8.8")}}, ""},
		{"boot test", "192.0.2.2::192.0.2.1:255.255.255.0:boottest:eth0:off",
			ipConfig{static: true, client: a("192.0.2.2"), gateway: a("192.0.2.1"), prefix: 24, hostname: "boottest", device: "eth0"}, ""},
		{"prefix length", "10.1.2.3:::16:::", ipConfig{static: true, client: a("10.1.2.3"), prefix: 16}, ""},
		{"classful A", "10.1.2.3::::::", ipConfig{static: true, client: a("10.1.2.3"), prefix: 8}, ""},
		{"classful B", "172.20.0.5::::::", ipConfig{static: true, client: a("172.20.0.5"), prefix: 16}, ""},
		{"classful C", "192.168.7.5", ipConfig{}, ""}, // no colon: a mode word, not an address
		{"classful C with colon", "192.168.7.5:", ipConfig{static: true, client: a("192.168.7.5"), prefix: 24}, ""},
		{"hostname and dns only", ":::::::9.9.9.9", ipConfig{static: true, dns: []netip.Addr{a("9.9.9.9")}}, ""},
		{"ten fields", "10.0.0.2::10.0.0.1:255.0.0.0:h:eth1:none:1.1.1.1:1.0.0.1:2.2.2.2",
			ipConfig{static: true, client: a("10.0.0.2"), gateway: a("10.0.0.1"), prefix: 8, hostname: "h", device: "eth1",
				dns: []netip.Addr{a("1.1.1.1"), a("1.0.0.1")}}, ""},
		{"dhcp", "dhcp", ipConfig{}, ""},
		{"off", "off", ipConfig{}, ""},
		{"bad client", "10.0.0.256::::::", ipConfig{}, "client"},
		{"ipv6 client", "fe80::1", ipConfig{}, "client"},
		{"bad gateway", "10.0.0.2::10.0.0:255.0.0.0:::", ipConfig{}, "gateway"},
		{"bad dns", "10.0.0.2:::255.0.0.0::::x", ipConfig{}, "dns0"},
		{"mask with holes", "10.0.0.2:::255.0.255.0:::", ipConfig{}, "netmask"},
		{"mask too long", "10.0.0.2:::33:::", ipConfig{}, "netmask"},
		{"class D without mask", "224.0.0.1::::::", ipConfig{}, "no class"},
		{"long hostname", "10.0.0.2::::" + strings.Repeat("h", 65) + "::", ipConfig{}, "hostname"},
		{"slash in device", "10.0.0.2:::::../x:", ipConfig{}, "device"},
		{"long device", "10.0.0.2:::::" + strings.Repeat("e", 16) + ":", ipConfig{}, "device"},
		{"leading zeros", "010.0.0.2:::8:::", ipConfig{static: true, client: a("10.0.0.2"), prefix: 8}, ""},
		{"plus sign", "+10.0.0.2:::8:::", ipConfig{}, "client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseIP(tc.value)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.static != tc.want.static || got.client != tc.want.client || got.gateway != tc.want.gateway ||
				got.prefix != tc.want.prefix || got.hostname != tc.want.hostname || got.device != tc.want.device ||
				!slices.Equal(got.dns, tc.want.dns) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestBroadcastAndResolv(t *testing.T) {
	for _, tc := range []struct {
		client string
		prefix int
		want   string
	}{
		{"192.0.2.2", 24, "192.0.2.255"}, {"172.16.0.2", 30, "172.16.0.3"}, {"10.1.2.3", 8, "10.255.255.255"},
		{"10.0.0.1", 31, ""}, {"10.0.0.1", 32, ""}, {"10.0.0.1", 0, "255.255.255.255"},
	} {
		b, ok := ipConfig{client: netip.MustParseAddr(tc.client), prefix: tc.prefix}.broadcast()
		if (tc.want == "") == ok || (ok && b.String() != tc.want) {
			t.Errorf("%s/%d: %v %v, want %q", tc.client, tc.prefix, b, ok, tc.want)
		}
	}
	c, _ := parseIP(":::::::1.1.1.1:8.8.8.8")
	if got := string(c.resolvConf()); got != "# Written by ext4pack-init from the kernel ip= argument.\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n" {
		t.Errorf("resolv.conf %q", got)
	}
	if (ipConfig{}).resolvConf() != nil {
		t.Error("resolv.conf without nameservers")
	}
}

// FuzzParseIP: any command line parses without panicking, and what parses
// is a configuration the network step can apply: valid IPv4 addresses, a
// prefix in range, names within the kernel's limits, and a description.
func FuzzParseIP(f *testing.F) {
	for _, s := range []string{
		"console=ttyS0 ip=172.16.0.2::172.16.0.1:255.255.255.252:vm1:eth0:off:1.1.1.1:8.8.8.8",
		"ip=dhcp", "ip=10.0.0.2:::8:::", "nfsaddrs=1.2.3.4::::::", "ip=:::::::", "ip=1.2.3.4:::255.255.0.0:h:e:x:1.1.1.1:2.2.2.2:3.3.3.3:extra",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmdline string) {
		value, _ := ipArgument(cmdline)
		c, err := parseIP(value)
		if err != nil {
			return
		}
		_ = c.String()
		if !c.static {
			if c.client.IsValid() || c.gateway.IsValid() || len(c.dns) > 0 || c.hostname != "" || c.device != "" {
				t.Fatalf("%q: not static yet holds %+v", value, c)
			}
			return
		}
		for _, a := range append([]netip.Addr{c.client, c.gateway}, c.dns...) {
			if a.IsValid() && !a.Is4() {
				t.Fatalf("%q: %v is not IPv4", value, a)
			}
		}
		if c.prefix < 0 || c.prefix > 32 || len(c.hostname) > maxHostname || len(c.device) > maxIfname ||
			strings.ContainsAny(c.hostname+c.device, "/\x00") {
			t.Fatalf("%q: out of range: %+v", value, c)
		}
		if c.client.IsValid() {
			if b, ok := c.broadcast(); ok && !b.Is4() {
				t.Fatalf("%q: broadcast %v", value, b)
			}
		}
	})
}
