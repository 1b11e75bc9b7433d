package main

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The tables below follow /proc/net of a little-endian (x86_64) Linux 6.x:
// the header and columns are as that kernel prints them, and the addresses
// are in its byte order. The sockets were chosen to cover each case.
const (
	tcpTable = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1157 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1158 1 0000000000000000 100 0 0 10 0
   2: 0200A8C0:0016 0100A8C0:D431 01 00000000:00000000 02:000A7B3F 00000000     0        0 2001 4 0000000000000000 20 4 30 10 -1
   3: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1159 1 0000000000000000 100 0 0 10 0
`
	tcp6Table = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1160 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1161 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1162 1 0000000000000000 100 0 0 10 0
`
	udpTable = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 1170 2 0000000000000000 0
  200: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1171 2 0000000000000000 0
  300: 0200A8C0:A1B2 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 1172 2 0000000000000000 0
`
	udp6Table = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  50: 000080FE00000000FF005450B8E1A3FE:0222 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1180 2 0000000000000000 0
`
)

func skipUnlessLittleEndian(t *testing.T) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the fixtures come from a little-endian kernel")
	}
}

func TestParseProcNet(t *testing.T) {
	skipUnlessLittleEndian(t)
	tests := []struct {
		proto, table string
		want         []port
	}{
		{"tcp", tcpTable, []port{
			{"tcp", 22, "0.0.0.0"},
			{"tcp", 3306, "127.0.0.1"},
			{"tcp", 3306, "127.0.0.1"}, // readPorts removes the duplicate
		}},
		{"tcp6", tcp6Table, []port{
			{"tcp6", 22, "::"},
			{"tcp6", 8080, "::1"},
			{"tcp6", 8081, "::ffff:127.0.0.1"},
		}},
		{"udp", udpTable, []port{
			{"udp", 53, "127.0.0.53"},
			{"udp", 68, "0.0.0.0"},
		}},
		{"udp6", udp6Table, []port{
			{"udp6", 546, "fe80::5054:ff:fea3:e1b8"},
		}},
		{"tcp", "  sl  local_address rem_address   st\n", nil},
		{"tcp", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.proto, func(t *testing.T) {
			got, err := parseProcNet(tc.proto, []byte(tc.table))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseProcNetErrors(t *testing.T) {
	const header = "  sl  local_address rem_address   st\n"
	tests := []struct {
		name, proto, line, want string
	}{
		{"few fields", "tcp", "0: 00000000:0016 00000000:0000", "want at least 4"},
		{"no port", "tcp", "0: 00000000 00000000:0000 0A", "has no port"},
		{"bad port", "tcp", "0: 00000000:XYZ0 00000000:0000 0A", "bad port"},
		{"short address", "tcp", "0: 000000:0016 00000000:0000 0A", "6 hex digits, want 8"},
		{"v4 in tcp6", "tcp6", "0: 00000000:0016 00000000:0000 0A", "want 32"},
		{"bad hex", "tcp", "0: 0000000G:0016 00000000:0000 0A", "bad address"},
		{"bad remote", "udp", "0: 00000000:0016 0000:0000 07", "remote address"},
		{"bad state", "tcp", "0: 00000000:0016 00000000:0000 ZZ", "state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseProcNet(tc.proto, []byte(header+tc.line+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "line 2") {
				t.Errorf("err = %v, want one naming line 2 and containing %q", err, tc.want)
			}
		})
	}
}

func writeTables(t *testing.T, tables map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range tables {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadPorts(t *testing.T) {
	skipUnlessLittleEndian(t)
	t.Run("all tables", func(t *testing.T) {
		dir := writeTables(t, map[string]string{"tcp": tcpTable, "tcp6": tcp6Table, "udp": udpTable, "udp6": udp6Table})
		got, err := readPorts(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := []port{
			{"tcp", 22, "0.0.0.0"},
			{"tcp", 3306, "127.0.0.1"},
			{"tcp6", 22, "::"},
			{"tcp6", 8080, "::1"},
			{"tcp6", 8081, "::ffff:127.0.0.1"},
			{"udp", 53, "127.0.0.53"},
			{"udp", 68, "0.0.0.0"},
			{"udp6", 546, "fe80::5054:ff:fea3:e1b8"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("got %v\nwant %v", got, want)
		}
	})
	t.Run("no IPv6 tables", func(t *testing.T) {
		dir := writeTables(t, map[string]string{"udp": udpTable, "tcp": tcpTable})
		got, err := readPorts(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 {
			t.Errorf("got %v, want 4 entries", got)
		}
	})
	t.Run("no tables", func(t *testing.T) {
		got, err := readPorts(t.TempDir())
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("got %#v, %v; want an empty, non-nil list", got, err)
		}
	})
	t.Run("corrupt table", func(t *testing.T) {
		dir := writeTables(t, map[string]string{"udp6": "header\ngarbage\n"})
		if _, err := readPorts(dir); err == nil || !strings.Contains(err.Error(), "/proc/net/udp6 line 2") {
			t.Errorf("err = %v, want one naming /proc/net/udp6 line 2", err)
		}
	})
}

// TestReadPortsLive checks the parser against the kernel it runs on: sockets
// this test opens must show up.
func TestReadPortsLive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/net is Linux's")
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	want := []port{
		{"tcp", tcp.Addr().(*net.TCPAddr).Port, "127.0.0.1"},
		{"udp", udp.LocalAddr().(*net.UDPAddr).Port, "127.0.0.1"},
	}
	if tcp6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		defer tcp6.Close()
		want = append(want, port{"tcp6", tcp6.Addr().(*net.TCPAddr).Port, "::1"})
	}

	got, err := readPorts("/proc/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%v is missing from %v", w, got)
		}
	}
	if !slices.IsSortedFunc(got, func(a, b port) int {
		return slices.Index(procNetTables, a.Proto) - slices.Index(procNetTables, b.Proto)
	}) {
		t.Errorf("not sorted by proto: %v", got)
	}
}
