package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ipConfig is what the kernel's ip= argument asks for (the kernel's
// admin-guide/nfs/nfsroot document):
//
//	ip=client:server:gw:netmask:hostname:device:autoconf:dns0:dns1:ntp0
//
// banger writes the static form; ip=dhcp, ip=off and the like leave the
// interface to the kernel or a DHCP client (static false).
type ipConfig struct {
	static   bool       // the value has fields; false for ip=dhcp, ip=off, ...
	client   netip.Addr // invalid when empty: the interface is left alone
	gateway  netip.Addr // invalid when empty: no default route
	prefix   int        // from the netmask, else the client's class
	hostname string
	device   string // "" for the first interface backed by a device
	dns      []netip.Addr
}

// Limits of the values, from the kernel: a hostname fits a utsname field
// (__NEW_UTS_LEN, 64), an interface name IFNAMSIZ (16) with its NUL.
const (
	maxHostname = 64
	maxIfname   = 15
)

// ipArgument returns the value of the last ip= (or nfsaddrs=, its older
// name) on a kernel command line, as the kernel takes the last one, and
// whether there is one. Words after "--" belong to init, not the kernel.
func ipArgument(cmdline string) (string, bool) {
	value, found := "", false
	for _, word := range strings.Fields(cmdline) {
		if word == "--" {
			break
		}
		for _, key := range []string{"ip=", "nfsaddrs="} {
			if v, ok := strings.CutPrefix(word, key); ok {
				value, found = v, true
			}
		}
	}
	return value, found
}

// parseIP reads the value of ip=. It checks every field it uses, since a
// typo should fail loudly rather than configure something else.
func parseIP(value string) (ipConfig, error) {
	var c ipConfig
	if !strings.Contains(value, ":") {
		// dhcp, on, any, both, bootp, rarp, off, none, or empty: nothing
		// static to apply.
		return c, nil
	}
	c.static = true
	f := strings.Split(value, ":")
	for len(f) < 10 {
		f = append(f, "")
	}
	var err error
	addr := func(what, s string) netip.Addr {
		if s == "" || err != nil {
			return netip.Addr{}
		}
		a, perr := parseIPv4(s)
		if perr != nil {
			err = fmt.Errorf("ip=: the %s %q is not an IPv4 address", what, s)
		}
		return a
	}
	c.client = addr("client", f[0])
	addr("server", f[1])
	c.gateway = addr("gateway", f[2])
	for i, what := range []string{"dns0", "dns1"} {
		if a := addr(what, f[7+i]); a.IsValid() {
			c.dns = append(c.dns, a)
		}
	}
	if err != nil {
		return ipConfig{}, err
	}
	switch mask := f[3]; {
	case mask != "":
		if c.prefix, err = maskPrefix(mask); err != nil {
			return ipConfig{}, err
		}
	case c.client.IsValid():
		if c.prefix, err = classfulPrefix(c.client); err != nil {
			return ipConfig{}, err
		}
	}
	c.hostname = f[4]
	if len(c.hostname) > maxHostname || strings.ContainsAny(c.hostname, "/\x00") {
		return ipConfig{}, fmt.Errorf("ip=: the hostname %q is not one (at most %d bytes, no / or NUL)", c.hostname, maxHostname)
	}
	c.device = f[5]
	if len(c.device) > maxIfname || strings.ContainsAny(c.device, "/\x00") || c.device == "." || c.device == ".." {
		return ipConfig{}, fmt.Errorf("ip=: the device %q is not an interface name", c.device)
	}
	return c, nil
}

// parseIPv4 accepts a dotted quad of decimal octets only, as the kernel's
// in_aton callers and the network script do: netip would take IPv6 too.
func parseIPv4(s string) (netip.Addr, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return netip.Addr{}, errors.New("not a dotted quad")
	}
	var b [4]byte
	for i, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return netip.Addr{}, errors.New("not a decimal octet")
		}
		n, err := strconv.Atoi(p)
		if err != nil || n > 255 {
			return netip.Addr{}, errors.New("not a decimal octet")
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), nil
}

// maskPrefix reads a netmask given dotted (255.255.255.0), as the kernel
// takes it, or as a prefix length (24), as banger's script also does. A
// mask with holes is an error.
func maskPrefix(mask string) (int, error) {
	if strings.Trim(mask, "0123456789") == "" && len(mask) <= 2 {
		n, err := strconv.Atoi(mask)
		if err == nil && n <= 32 {
			return n, nil
		}
		return 0, fmt.Errorf("ip=: bad netmask %q", mask)
	}
	a, err := parseIPv4(mask)
	if err != nil {
		return 0, fmt.Errorf("ip=: bad netmask %q", mask)
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&(1<<31) != 0 {
		v <<= 1
		n++
	}
	if v != 0 {
		return 0, fmt.Errorf("ip=: bad netmask %q (not contiguous)", mask)
	}
	return n, nil
}

// classfulPrefix is the prefix the kernel assumes when ip= gives no
// netmask: that of the address's class A, B or C.
func classfulPrefix(a netip.Addr) (int, error) {
	switch first := a.As4()[0]; {
	case first < 128:
		return 8, nil
	case first < 192:
		return 16, nil
	case first < 224:
		return 24, nil
	}
	return 0, fmt.Errorf("ip=: no netmask, and %v has no class", a)
}

// broadcast returns the broadcast address of the client's subnet, as the
// kernel's ip= and ifconfig set it, and false for /31 and /32, which have
// none.
func (c ipConfig) broadcast() (netip.Addr, bool) {
	if c.prefix >= 31 {
		return netip.Addr{}, false
	}
	b := c.client.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-c.prefix) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// resolvConf returns /etc/resolv.conf for the nameservers, or nil without
// any, in the form the network script writes.
func (c ipConfig) resolvConf() []byte {
	if len(c.dns) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("# Written by ext4pack-init from the kernel ip= argument.\n")
	for _, a := range c.dns {
		b.WriteString("nameserver " + a.String() + "\n")
	}
	return []byte(b.String())
}

// String describes c for the console log.
func (c ipConfig) String() string {
	if !c.static {
		return "no static configuration"
	}
	var parts []string
	if c.client.IsValid() {
		parts = append(parts, c.client.String()+"/"+strconv.Itoa(c.prefix))
	}
	if c.gateway.IsValid() {
		parts = append(parts, "via "+c.gateway.String())
	}
	if c.device != "" {
		parts = append(parts, "on "+c.device)
	}
	if c.hostname != "" {
		parts = append(parts, "hostname "+c.hostname)
	}
	for _, d := range c.dns {
		parts = append(parts, "dns "+d.String())
	}
	return strings.Join(parts, ", ")
}
