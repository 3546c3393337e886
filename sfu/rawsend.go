package sfu

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSender sends a burst's sendmsg(2) as a raw system call, which the Go
// scheduler does not see as one.
//
// Why: net.UDPConn's writes enter the system call through the runtime's
// entersyscall, which tells the scheduler the goroutine may block. A
// sendmsg on the media socket never blocks (the socket is non-blocking: a
// full buffer is EAGAIN, and then this waits in the poller like any Go
// write), but a GSO burst to loopback or a busy NIC queue can take tens of
// microseconds of kernel work. While it runs, the runtime's sysmon thread
// polls every 20 µs and, finding a P "in a system call" with work queued,
// hands the P to another thread; when the send returns, its thread must
// find a P again or sleep. And every entersyscall after the process was
// idle wakes sysmon from its sleep: the reads in rxstamp.go are raw for
// that reason. Measured under paced media, sysmon alone was 11-22 % of the
// server's CPU samples (docs/PERFORMANCE.md). A raw
// system call keeps the P for the send, as a computation of the same
// length would.
type rawSender struct {
	*rawSocket
	hdr    unix.Msghdr
	iov    unix.Iovec
	sa4    unix.RawSockaddrInet4
	sa6    unix.RawSockaddrInet6
	errno  syscall.Errno
	sendFn func(fd uintptr) bool // s.send, bound once: no closure per send
}

// rawSocket is what every burst's rawSender shares: the media socket and
// its family.
type rawSocket struct {
	rc    syscall.RawConn
	inet6 bool // the socket is AF_INET6 (IPv4 peers as mapped addresses)
}

// newRawSocket reads c's family; nil when it cannot, and then bursts use
// the net package's send.
func newRawSocket(c *net.UDPConn) *rawSocket {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var sa unix.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil || serr != nil {
		return nil
	}
	switch sa.(type) {
	case *unix.SockaddrInet4:
		return &rawSocket{rc: rc}
	case *unix.SockaddrInet6:
		return &rawSocket{rc: rc, inet6: true}
	}
	return nil
}

// sender is one burst's: its message header and addresses are reused for
// every send, under the burst's lock.
func (r *rawSocket) sender() *rawSender {
	if r == nil {
		return nil
	}
	s := &rawSender{rawSocket: r}
	s.hdr.Iov = &s.iov
	s.hdr.SetIovlen(1)
	s.sendFn = s.send
	return s
}

// sendmsg sends b with the control message oob to addr. Errors are the
// kernel's (EIO, EINVAL: the caller turns GSO off).
func (s *rawSender) sendmsg(b, oob []byte, addr netip.AddrPort) error {
	if len(b) == 0 {
		return nil
	}
	ip := addr.Addr()
	switch {
	case ip.Is4() && !s.inet6:
		s.sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4()}
		putPort(&s.sa4.Port, addr.Port())
		s.hdr.Name, s.hdr.Namelen = (*byte)(unsafe.Pointer(&s.sa4)), unix.SizeofSockaddrInet4
	case s.inet6:
		s.sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
		putPort(&s.sa6.Port, addr.Port())
		s.hdr.Name, s.hdr.Namelen = (*byte)(unsafe.Pointer(&s.sa6)), unix.SizeofSockaddrInet6
	default:
		return syscall.EAFNOSUPPORT // an IPv6 peer on an IPv4 socket
	}
	s.iov.Base = &b[0]
	s.iov.SetLen(len(b))
	s.hdr.Control = nil
	s.hdr.SetControllen(0)
	if len(oob) > 0 {
		s.hdr.Control = &oob[0]
		s.hdr.SetControllen(len(oob))
	}
	s.errno = 0
	if err := s.rc.Write(s.sendFn); err != nil {
		return err
	}
	if s.errno != 0 {
		return s.errno
	}
	return nil
}

// send is the raw call; false asks the poller to wait until the socket
// can take more.
func (s *rawSender) send(fd uintptr) bool {
	_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&s.hdr)), unix.MSG_DONTWAIT)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	s.errno = e
	return true
}

// putPort stores a port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}
