package sfu

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The delay the server adds starts where a publisher's packet reaches its
// socket, not where the forwarder reads it: between the two are the time
// the packet waits in the socket for the ICE mux's goroutine, the mux's
// hand-off to the connection, SRTP, and Pion's receive buffer, each a
// goroutine waiting for a CPU. The kernel stamps every datagram as it
// arrives (SO_TIMESTAMPNS); the media socket's reader notes the stamp of
// each RTP packet by SSRC and sequence number, which SRTP leaves in the
// clear, and the forwarder looks it up when it stores the packet. The
// server delay histogram (huddle_media_server_delay_seconds) runs from
// that stamp to the end of the send; the forward delay histogram from the
// forwarder's read.

// rxSlots is how many recent arrivals the table keeps: a packet is looked
// up a few milliseconds after it arrived, long before 8192 others have.
const rxSlots = 1 << 13

// rxStamps is a fixed table of recent RTP arrival times, written by the
// socket's one reader and read by forwarders, without locks or allocation.
type rxStamps struct {
	slots [rxSlots]struct {
		key atomic.Uint64 // 1<<48 | ssrc<<16 | seq, 0 while being written
		at  atomic.Int64  // unix nanos
	}
}

func rxKey(ssrc uint32, seq uint16) uint64 { return 1<<48 | uint64(ssrc)<<16 | uint64(seq) }

func rxSlot(ssrc uint32, seq uint16) int { return int((ssrc*2654435761)^uint32(seq)) & (rxSlots - 1) }

func (t *rxStamps) note(ssrc uint32, seq uint16, at int64) {
	s := &t.slots[rxSlot(ssrc, seq)]
	s.key.Store(0)
	s.at.Store(at)
	s.key.Store(rxKey(ssrc, seq))
}

// arrival is when packet seq of ssrc reached the socket, if still known.
func (t *rxStamps) arrival(ssrc uint32, seq uint16) (int64, bool) {
	if t == nil {
		return 0, false
	}
	s := &t.slots[rxSlot(ssrc, seq)]
	want := rxKey(ssrc, seq)
	if s.key.Load() != want {
		return 0, false
	}
	at := s.at.Load()
	if s.key.Load() != want {
		return 0, false
	}
	return at, true
}

// rxReader reads the media socket with the kernel's receive stamps. One
// goroutine (the ICE UDP mux's) reads the socket; a second concurrent
// reader, should there ever be one, reads without stamps rather than
// share the control buffer.
type rxReader struct {
	conn  *net.UDPConn
	table rxStamps
	mu    sync.Mutex
	oob   [64]byte

	// The raw receive (rawsend.go says why), under mu: its message header,
	// the sender's address and the call's results.
	rc     syscall.RawConn
	hdr    unix.Msghdr
	iov    unix.Iovec
	from   unix.RawSockaddrAny
	n      int
	errno  syscall.Errno
	recvFn func(fd uintptr) bool
}

// newRXReader turns the kernel's receive stamps on for c; nil if it
// refuses them.
func newRXReader(c *net.UDPConn) *rxReader {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || opErr != nil {
		return nil
	}
	r := &rxReader{conn: c, rc: rc}
	r.hdr.Iov = &r.iov
	r.hdr.SetIovlen(1)
	r.recvFn = r.recv
	return r
}

func (r *rxReader) read(b []byte) (int, netip.AddrPort, error) {
	if len(b) == 0 || !r.mu.TryLock() { // (an empty b must not take the lock: it would keep it)
		return r.conn.ReadFromUDPAddrPort(b)
	}
	defer r.mu.Unlock()
	r.iov.Base = &b[0]
	r.iov.SetLen(len(b))
	r.hdr.Name = (*byte)(unsafe.Pointer(&r.from))
	r.hdr.Namelen = unix.SizeofSockaddrAny
	r.hdr.Control = &r.oob[0]
	r.hdr.SetControllen(len(r.oob))
	r.n, r.errno = 0, 0
	if err := r.rc.Read(r.recvFn); err != nil {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: r.conn.LocalAddr(), Err: err}
	}
	if r.errno != 0 {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: r.conn.LocalAddr(), Err: os.NewSyscallError("recvmsg", r.errno)}
	}
	n, oobn := r.n, int(r.hdr.Controllen)
	addr := sockaddrPort(&r.from)
	if n < 12 || b[0]&0xc0 != 0x80 || (b[1] >= 192 && b[1] <= 223) {
		return n, addr, nil // not RTP (STUN, DTLS, RTCP)
	}
	if at, ok := rxTimestamp(r.oob[:oobn]); ok {
		r.table.note(binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint16(b[2:]), at)
	}
	return n, addr, nil
}

// recv is the raw call; false asks the poller to wait for a datagram.
func (r *rxReader) recv(fd uintptr) bool {
	n, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.hdr)), unix.MSG_DONTWAIT)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	r.n, r.errno = int(n), e
	return true
}

// sockaddrPort is the sender's address recvmsg wrote, as the net package
// would give it: from a dual-stack socket an IPv4 sender is an IPv4-mapped
// address, and a link-local one carries its interface as the zone.
func sockaddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&a.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&a.Port))
		ip := netip.AddrFrom16(a.Addr)
		if a.Scope_id != 0 {
			ip = ip.WithZone(zoneName(int(a.Scope_id)))
		}
		return netip.AddrPortFrom(ip, uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// zoneName is an interface's name, or its index when it has none.
func zoneName(index int) string {
	if ifi, err := net.InterfaceByIndex(index); err == nil {
		return ifi.Name
	}
	return strconv.Itoa(index)
}

// rxTimestamp finds SCM_TIMESTAMPNS in a control message buffer without
// allocating (unix.ParseSocketControlMessage returns a slice).
func rxTimestamp(oob []byte) (int64, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0, false
		}
		data := oob[unix.CmsgLen(0):l]
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			return ts.Nano(), true
		}
		oob = oob[min(len(oob), unix.CmsgSpace(l-unix.CmsgLen(0))):]
	}
	return 0, false
}
