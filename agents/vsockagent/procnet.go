package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// port is one entry of the /ports answer.
type port struct {
	Proto   string `json:"proto"` // "tcp", "tcp6", "udp" or "udp6"
	Port    int    `json:"port"`
	Address string `json:"address"` // local address, "0.0.0.0" or "::" for any
}

// Socket states as /proc/net prints them (include/net/tcp_states.h). UDP
// sockets reuse the TCP numbers: an unconnected one is TCP_CLOSE, a connected
// one TCP_ESTABLISHED.
const (
	stateClose  = 0x07
	stateListen = 0x0A
)

// procNetTables are the files readPorts reads, in the order of the answer.
var procNetTables = []string{"tcp", "tcp6", "udp", "udp6"}

// readPorts returns the listening TCP and the bound, unconnected UDP sockets
// in the /proc/net tables under dir, sorted by proto, port and address, each
// once (SO_REUSEPORT groups show one line per socket). A table that does not
// exist, as tcp6 on a kernel without IPv6, counts as empty.
func readPorts(dir string) ([]port, error) {
	ports := []port{} // so that an empty answer encodes as [], not null
	for _, proto := range procNetTables {
		data, err := os.ReadFile(filepath.Join(dir, proto))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found, err := parseProcNet(proto, data)
		if err != nil {
			return nil, err
		}
		ports = append(ports, found...)
	}
	slices.SortFunc(ports, func(a, b port) int {
		return cmp.Or(
			cmp.Compare(slices.Index(procNetTables, a.Proto), slices.Index(procNetTables, b.Proto)),
			cmp.Compare(a.Port, b.Port),
			strings.Compare(a.Address, b.Address))
	})
	return slices.Compact(ports), nil
}

// parseProcNet returns the sockets of one /proc/net table (tcp, tcp6, udp or
// udp6, named by proto) that a peer can reach: TCP in LISTEN, UDP unconnected
// with a local port. The first line is the column header.
func parseProcNet(proto string, data []byte) ([]port, error) {
	udp := strings.HasPrefix(proto, "udp")
	v6 := strings.HasSuffix(proto, "6")
	var ports []port
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if n == 1 || len(fields) == 0 {
			continue
		}
		// sl local_address rem_address st ...
		if len(fields) < 4 {
			return nil, fmt.Errorf("/proc/net/%s line %d: %d fields, want at least 4", proto, n, len(fields))
		}
		local, lport, err := parseEndpoint(fields[1], v6)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s line %d: local address: %w", proto, n, err)
		}
		remote, rport, err := parseEndpoint(fields[2], v6)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s line %d: remote address: %w", proto, n, err)
		}
		state, err := strconv.ParseUint(fields[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s line %d: state: %w", proto, n, err)
		}
		switch {
		case !udp && state == stateListen:
		case udp && state == stateClose && remote.IsUnspecified() && rport == 0 && lport != 0:
		default:
			continue
		}
		ports = append(ports, port{Proto: proto, Port: int(lport), Address: local.String()})
	}
	return ports, sc.Err()
}

// parseEndpoint decodes an "ADDR:PORT" column of a /proc/net table. The port
// is a plain hex number. The address is hex too, but the kernel prints it as
// 32-bit words, each a network-order value printed as a host integer with
// %08X (tcp4_seq_show, tcp6_seq_show): storing each word back in host order
// gives the address bytes.
func parseEndpoint(s string, v6 bool) (netip.Addr, uint16, error) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("%q has no port", s)
	}
	p, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("%q: bad port: %w", s, err)
	}
	size := 4
	if v6 {
		size = 16
	}
	if len(hexAddr) != 2*size {
		return netip.Addr{}, 0, fmt.Errorf("%q: address is %d hex digits, want %d", s, len(hexAddr), 2*size)
	}
	var b [16]byte
	for i := 0; i < size; i += 4 {
		w, err := strconv.ParseUint(hexAddr[2*i:2*i+8], 16, 32)
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("%q: bad address: %w", s, err)
		}
		binary.NativeEndian.PutUint32(b[i:], uint32(w))
	}
	if v6 {
		return netip.AddrFrom16(b), uint16(p), nil
	}
	return netip.AddrFrom4([4]byte(b[:4])), uint16(p), nil
}
