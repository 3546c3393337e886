package sfu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP GSO limits: the kernel takes at most 64 segments (UDP_MAX_SEGMENTS on
// older kernels) and one IP datagram's worth of bytes per send.
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 65000
)

// gsoConn is the media UDP socket as the ICE UDP mux sees it. While a
// subscriber's send path writes a batch, the packets to that subscriber's
// address are gathered into a burst and leave in as few UDP_SEGMENT sends as
// their sizes allow (equal sizes, the last may be shorter): one system call
// per burst instead of one per packet. Everything else (other addresses,
// STUN, DTLS, and every packet when the kernel has no GSO) goes straight
// through.
type gsoConn struct {
	*net.UDPConn
	log *slog.Logger
	on  atomic.Bool

	gsoSends, gsoPackets atomic.Uint64 // UDP_SEGMENT sends, and the packets in them

	mu     sync.RWMutex
	bursts map[netip.AddrPort]*burst

	rx *rxReader // the kernel's receive stamps (rxstamp.go); nil without

	raw *rawSocket // bursts' sends as raw system calls (rawsend.go); nil: the net package's
}

// newGSOConn wraps the media socket, and decides once whether bursts are
// used: the socket must answer the UDP_SEGMENT option (Linux 4.18+) and
// disable is false.
func newGSOConn(c *net.UDPConn, disable bool, log *slog.Logger) *gsoConn {
	g := &gsoConn{UDPConn: c, log: log, bursts: map[netip.AddrPort]*burst{}}
	err := errors.New("disabled by configuration")
	if !disable {
		err = probeGSO(c)
	}
	if err != nil {
		log.Info("media: UDP GSO off, one send per packet", "reason", err)
		return g
	}
	g.on.Store(true)
	g.raw = newRawSocket(c)
	log.Info("media: UDP GSO on, a subscriber's burst leaves in one send", "raw_sends", g.raw != nil)
	return g
}

func probeGSO(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		_, opErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return err
	}
	if opErr != nil {
		return fmt.Errorf("UDP_SEGMENT: %w", opErr)
	}
	return nil
}

// WriteToAddrPort is the ICE UDP mux's write path (it prefers this
// allocation-free form over WriteTo).
func (g *gsoConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if g.on.Load() {
		g.mu.RLock()
		bu := g.bursts[normalize(addr)]
		g.mu.RUnlock()
		if bu != nil {
			return bu.add(g, b, normalize(addr))
		}
	}
	return g.UDPConn.WriteToUDPAddrPort(b, addr)
}

// ReadFromAddrPort completes the mux's allocation-free interface.
func (g *gsoConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if g.rx != nil {
		return g.rx.read(b)
	}
	return g.UDPConn.ReadFromUDPAddrPort(b)
}

func (g *gsoConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok && g.on.Load() {
		return g.WriteToAddrPort(b, ua.AddrPort())
	}
	return g.UDPConn.WriteTo(b, addr)
}

// arrival is when the RTP packet seq of ssrc reached the socket (unix
// nanos, the kernel's stamp), if it is still known.
func (g *gsoConn) arrival(ssrc uint32, seq uint16) (int64, bool) {
	if g == nil || g.rx == nil {
		return 0, false
	}
	return g.rx.table.arrival(ssrc, seq)
}

func normalize(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// burst gathers one subscriber's packets during one send-path batch. A send
// path owns one, with its buffer, for its whole life.
type burst struct {
	mu   sync.Mutex
	addr netip.AddrPort
	buf  []byte
	seg  int // size of every segment but maybe the last
	n    int
	oob  []byte
	raw  *rawSender // nil: sends through the net package
}

func (g *gsoConn) newBurst() *burst {
	bu := &burst{buf: make([]byte, 0, gsoMaxBytes), oob: make([]byte, unix.CmsgSpace(2))}
	if g != nil {
		bu.raw = g.raw.sender()
	}
	return bu
}

// begin starts gathering the packets to addr into bu; it reports false
// (send directly) when GSO is off or another burst has the address.
func (g *gsoConn) begin(bu *burst, addr netip.AddrPort) bool {
	if g == nil || !g.on.Load() || !addr.IsValid() {
		return false
	}
	addr = normalize(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bursts[addr] != nil {
		return false
	}
	bu.mu.Lock() // a writer holding this burst from its last batch may be in add
	bu.addr = addr
	bu.mu.Unlock()
	g.bursts[addr] = bu
	return true
}

// end sends what the burst holds and stops gathering.
func (g *gsoConn) end(bu *burst) {
	g.mu.Lock()
	delete(g.bursts, bu.addr)
	g.mu.Unlock()
	bu.mu.Lock()
	bu.flush(g)
	bu.addr = netip.AddrPort{} // a late writer that still holds it sends directly
	bu.mu.Unlock()
}

// add gathers one packet to addr. A writer that looked the burst up just
// before its batch ended (or the next began, for another address) sends
// its packet directly rather than leave it waiting for the next batch.
func (bu *burst) add(g *gsoConn, b []byte, addr netip.AddrPort) (int, error) {
	bu.mu.Lock()
	defer bu.mu.Unlock()
	if bu.addr != addr {
		return g.UDPConn.WriteToUDPAddrPort(b, addr)
	}
	if bu.n > 0 && (len(b) > bu.seg || bu.n == gsoMaxSegments || len(bu.buf)+len(b) > gsoMaxBytes) {
		bu.flush(g)
	}
	if bu.n == 0 {
		bu.seg = len(b)
	}
	bu.buf = append(bu.buf, b...)
	bu.n++
	if len(b) < bu.seg {
		bu.flush(g) // a shorter segment can only be the last of a send
	}
	return len(b), nil
}

// flush sends the gathered packets: one UDP_SEGMENT send, or a plain one
// for a single packet. A kernel that refuses GSO sends (EIO: no checksum
// offload on the route; EINVAL) turns it off for good, and the packets go
// one by one. Send errors are otherwise dropped, as UDP drops.
func (bu *burst) flush(g *gsoConn) {
	if bu.n == 0 {
		return
	}
	defer func() { bu.buf, bu.n = bu.buf[:0], 0 }()
	if bu.n == 1 {
		if bu.raw != nil {
			_ = bu.raw.sendmsg(bu.buf, nil, bu.addr)
		} else {
			g.UDPConn.WriteToUDPAddrPort(bu.buf, bu.addr)
		}
		return
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&bu.oob[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(bu.oob[unix.CmsgLen(0):], uint16(bu.seg))
	var err error
	if bu.raw != nil {
		err = bu.raw.sendmsg(bu.buf, bu.oob, bu.addr)
	} else {
		_, _, err = g.UDPConn.WriteMsgUDPAddrPort(bu.buf, bu.oob, bu.addr)
	}
	if err == nil {
		g.gsoSends.Add(1)
		g.gsoPackets.Add(uint64(bu.n))
	}
	if err != nil && (errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EINVAL)) {
		if g.on.CompareAndSwap(true, false) {
			g.log.Warn("media: UDP GSO send refused, one send per packet from now on", "err", err)
		}
		for off := 0; off < len(bu.buf); off += bu.seg {
			g.UDPConn.WriteToUDPAddrPort(bu.buf[off:min(off+bu.seg, len(bu.buf))], bu.addr)
		}
	}
}
