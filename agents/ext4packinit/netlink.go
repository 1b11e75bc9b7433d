package main

import (
	"encoding/binary"
	"net/netip"
)

// Netlink route messages (rtnetlink(7); the structs of linux/netlink.h,
// linux/rtnetlink.h, linux/if_link.h and linux/if_addr.h). Everything is in
// the host's byte order. The numbers are the kernel's ABI, written out here
// so that the encoding is testable on any OS.
const (
	nlmsgHdrLen = 16 // struct nlmsghdr: len u32, type u16, flags u16, seq u32, pid u32
	nlmsgError  = 2  // NLMSG_ERROR

	nlmFRequest = 0x1   // NLM_F_REQUEST
	nlmFAck     = 0x4   // NLM_F_ACK
	nlmFReplace = 0x100 // NLM_F_REPLACE
	nlmFCreate  = 0x400 // NLM_F_CREATE

	rtmNewLink  = 16 // RTM_NEWLINK
	rtmNewAddr  = 20 // RTM_NEWADDR
	rtmNewRoute = 24 // RTM_NEWROUTE

	afUnspec = 0 // AF_UNSPEC
	afInet   = 2 // AF_INET
	iffUp    = 0x1

	ifaAddress   = 1 // IFA_ADDRESS
	ifaLocal     = 2 // IFA_LOCAL
	ifaBroadcast = 4 // IFA_BROADCAST

	rtaGateway = 5 // RTA_GATEWAY
	rtaOif     = 4 // RTA_OIF

	rtTableMain     = 254 // RT_TABLE_MAIN
	rtprotBoot      = 3   // RTPROT_BOOT: what ip route add and the kernel's ip= use
	rtScopeUniverse = 0   // RT_SCOPE_UNIVERSE
	rtnUnicast      = 1   // RTN_UNICAST
)

var ne = binary.NativeEndian

// appendNlmsg appends one netlink message: the header, then body, which
// holds the family struct and its attributes, already aligned.
func appendNlmsg(dst []byte, typ, flags uint16, seq uint32, body []byte) []byte {
	dst = ne.AppendUint32(dst, uint32(nlmsgHdrLen+len(body)))
	dst = ne.AppendUint16(dst, typ)
	dst = ne.AppendUint16(dst, flags)
	dst = ne.AppendUint32(dst, seq)
	dst = ne.AppendUint32(dst, 0) // pid 0: the kernel fills in ours
	return append(dst, body...)
}

// appendAttr appends a struct rtattr (len u16, type u16) and its data,
// padded to 4 bytes (RTA_ALIGN).
func appendAttr(dst []byte, typ uint16, data []byte) []byte {
	dst = ne.AppendUint16(dst, uint16(4+len(data)))
	dst = ne.AppendUint16(dst, typ)
	dst = append(dst, data...)
	for len(data)%4 != 0 {
		dst = append(dst, 0)
		data = append(data, 0)
	}
	return dst
}

// linkUpMsg is RTM_NEWLINK setting IFF_UP on interface index: struct
// ifinfomsg (family u8, pad u8, type u16, index s32, flags u32, change u32).
func linkUpMsg(seq uint32, index int32) []byte {
	var b []byte
	b = append(b, afUnspec, 0)
	b = ne.AppendUint16(b, 0)
	b = ne.AppendUint32(b, uint32(index))
	b = ne.AppendUint32(b, iffUp)
	b = ne.AppendUint32(b, iffUp)
	return appendNlmsg(nil, rtmNewLink, nlmFRequest|nlmFAck, seq, b)
}

// addrMsg is RTM_NEWADDR for addr/prefix on index, replacing the address if
// it is there already, so that running twice changes nothing: struct
// ifaddrmsg (family u8, prefixlen u8, flags u8, scope u8, index u32), then
// IFA_LOCAL, IFA_ADDRESS and IFA_BROADCAST.
func addrMsg(seq uint32, index int32, addr netip.Addr, prefix int, brd netip.Addr) []byte {
	b := []byte{afInet, byte(prefix), 0, rtScopeUniverse}
	b = ne.AppendUint32(b, uint32(index))
	a := addr.As4()
	b = appendAttr(b, ifaLocal, a[:])
	b = appendAttr(b, ifaAddress, a[:])
	if brd.IsValid() {
		bb := brd.As4()
		b = appendAttr(b, ifaBroadcast, bb[:])
	}
	return appendNlmsg(nil, rtmNewAddr, nlmFRequest|nlmFAck|nlmFCreate|nlmFReplace, seq, b)
}

// defaultRouteMsg is RTM_NEWROUTE for 0.0.0.0/0 via gw out of index,
// replacing any default route: struct rtmsg (family, dst_len, src_len, tos,
// table, protocol, scope, type: u8 each; flags u32), then RTA_GATEWAY and
// RTA_OIF.
func defaultRouteMsg(seq uint32, index int32, gw netip.Addr) []byte {
	b := []byte{afInet, 0, 0, 0, rtTableMain, rtprotBoot, rtScopeUniverse, rtnUnicast}
	b = ne.AppendUint32(b, 0)
	g := gw.As4()
	b = appendAttr(b, rtaGateway, g[:])
	b = appendAttr(b, rtaOif, ne.AppendUint32(nil, uint32(index)))
	return appendNlmsg(nil, rtmNewRoute, nlmFRequest|nlmFAck|nlmFCreate|nlmFReplace, seq, b)
}

// ackError reads the kernel's answers to request seq in buf and returns
// done when one is the acknowledgement: an NLMSG_ERROR whose error is 0 for
// success, else a negative errno (returned positive).
func ackError(buf []byte, seq uint32) (errno int32, done bool) {
	for len(buf) >= nlmsgHdrLen {
		l := ne.Uint32(buf[0:4])
		if l < nlmsgHdrLen || int(l) > len(buf) {
			return 0, false
		}
		typ, s := ne.Uint16(buf[4:6]), ne.Uint32(buf[8:12])
		if typ == nlmsgError && s == seq && l >= nlmsgHdrLen+4 {
			return -int32(ne.Uint32(buf[16:20])), true
		}
		l = (l + 3) &^ 3
		if int(l) > len(buf) {
			break
		}
		buf = buf[l:]
	}
	return 0, false
}
