package main

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// hostOrder skips on a big-endian host: netlink uses the host's order and
// the goldens are written for x86_64 and aarch64.
func hostOrder(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the golden messages are little-endian")
	}
}

// TestNetlinkMessages pins each request's bytes, laid out by hand from
// rtnetlink(7) and the kernel's headers; TestApplyIPOnKernel shows that the
// kernel accepts them.
func TestNetlinkMessages(t *testing.T) {
	hostOrder(t)
	for _, tc := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"link up", linkUpMsg(7, 2), []byte{
			32, 0, 0, 0, 16, 0, 5, 0, 7, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: len 32, RTM_NEWLINK, REQUEST|ACK, seq 7
			0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, // ifinfomsg: AF_UNSPEC, index 2, flags UP, change UP
		}},
		{"address", addrMsg(8, 2, netip.MustParseAddr("192.0.2.2"), 24, netip.MustParseAddr("192.0.2.255")), []byte{
			48, 0, 0, 0, 20, 0, 0x05, 0x05, 8, 0, 0, 0, 0, 0, 0, 0, // RTM_NEWADDR, REQUEST|ACK|REPLACE|CREATE
			2, 24, 0, 0, 2, 0, 0, 0, // ifaddrmsg: AF_INET, /24, index 2
			8, 0, 2, 0, 192, 0, 2, 2, // IFA_LOCAL
			8, 0, 1, 0, 192, 0, 2, 2, // IFA_ADDRESS
			8, 0, 4, 0, 192, 0, 2, 255, // IFA_BROADCAST
		}},
		{"address /32", addrMsg(9, 3, netip.MustParseAddr("10.0.0.1"), 32, netip.Addr{}), []byte{
			40, 0, 0, 0, 20, 0, 0x05, 0x05, 9, 0, 0, 0, 0, 0, 0, 0,
			2, 32, 0, 0, 3, 0, 0, 0,
			8, 0, 2, 0, 10, 0, 0, 1,
			8, 0, 1, 0, 10, 0, 0, 1,
		}},
		{"default route", defaultRouteMsg(10, 2, netip.MustParseAddr("192.0.2.1")), []byte{
			44, 0, 0, 0, 24, 0, 0x05, 0x05, 10, 0, 0, 0, 0, 0, 0, 0, // RTM_NEWROUTE
			2, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0, // rtmsg: AF_INET, main table, RTPROT_BOOT, universe, unicast
			8, 0, 5, 0, 192, 0, 2, 1, // RTA_GATEWAY
			8, 0, 4, 0, 2, 0, 0, 0, // RTA_OIF
		}},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s:\ngot  %v\nwant %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestAppendAttrPads(t *testing.T) {
	got := appendAttr(nil, 3, []byte("eth0\x00"))
	want := []byte{9, 0, 3, 0, 'e', 't', 'h', '0', 0, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAckError(t *testing.T) {
	hostOrder(t)
	ack := func(seq uint32, errno int32) []byte {
		b := appendNlmsg(nil, nlmsgError, 0, seq, binary.NativeEndian.AppendUint32(nil, uint32(errno)))
		return append(b, make([]byte, 16)...) // the request's header, echoed
	}
	fix := func(b []byte) []byte { binary.NativeEndian.PutUint32(b, uint32(len(b))); return b }
	for _, tc := range []struct {
		name  string
		buf   []byte
		seq   uint32
		errno int32
		done  bool
	}{
		{"ok", fix(ack(5, 0)), 5, 0, true},
		{"EEXIST", fix(ack(5, -17)), 5, 17, true},
		{"other seq", fix(ack(4, -1)), 5, 0, false},
		{"two, second ours", append(fix(ack(4, -1)), fix(ack(5, -19))...), 5, 19, true},
		{"short", []byte{1, 2, 3}, 5, 0, false},
		{"length past the end", []byte{200, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0}, 5, 0, false},
		{"zero length", make([]byte, 32), 0, 0, false},
	} {
		errno, done := ackError(tc.buf, tc.seq)
		if errno != tc.errno || done != tc.done {
			t.Errorf("%s: got %d %v, want %d %v", tc.name, errno, done, tc.errno, tc.done)
		}
	}
}

// FuzzAckError: whatever the kernel (or a bug) sends, reading it ends and
// never panics.
func FuzzAckError(f *testing.F) {
	f.Add([]byte{36, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint32(5))
	f.Fuzz(func(t *testing.T, buf []byte, seq uint32) { ackError(buf, seq) })
}
