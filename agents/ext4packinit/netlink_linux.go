package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// rtnl is a NETLINK_ROUTE socket that sends one request at a time and
// waits for its acknowledgement.
type rtnl struct {
	fd  int
	seq uint32
}

func dialRtnl() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket AF_NETLINK", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind netlink", err)
	}
	// A kernel that never answers must not hang init.
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	return &rtnl{fd: fd}, nil
}

func (c *rtnl) Close() error { return unix.Close(c.fd) }

// do sends the request build makes for the next sequence number and waits
// for the kernel's acknowledgement.
func (c *rtnl) do(what string, build func(seq uint32) []byte) error {
	c.seq++
	if err := unix.Sendto(c.fd, build(c.seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("%s: %w", what, os.NewSyscallError("sendto netlink", err))
	}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, os.NewSyscallError("recvfrom netlink", err))
		}
		if errno, done := ackError(buf[:n], c.seq); done {
			if errno != 0 {
				return fmt.Errorf("%s: %w", what, unix.Errno(errno))
			}
			return nil
		}
	}
}

func (c *rtnl) linkUp(name string, index int) error {
	return c.do("bringing "+name+" up", func(seq uint32) []byte { return linkUpMsg(seq, int32(index)) })
}

func (c *rtnl) addAddr(name string, index int, addr netip.Addr, prefix int, brd netip.Addr) error {
	return c.do(fmt.Sprintf("adding %v/%d to %s", addr, prefix, name), func(seq uint32) []byte {
		return addrMsg(seq, int32(index), addr, prefix, brd)
	})
}

func (c *rtnl) defaultRoute(name string, index int, gw netip.Addr) error {
	return c.do(fmt.Sprintf("setting the default route via %v on %s", gw, name), func(seq uint32) []byte {
		return defaultRouteMsg(seq, int32(index), gw)
	})
}

// ifIndex returns the interface's index (net asks the kernel over netlink).
func ifIndex(name string) (int, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifc.Index, nil
}
