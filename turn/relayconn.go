package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
)

// errTCPRelay is returned for RFC 6062 TCP allocations: Huddle's media is
// UDP, and a TCP relay would let clients open connections to arbitrary
// ports on the SFU's host.
var errTCPRelay = errors.New("turn: TCP relay allocations are not supported")

// relayAllocator implements pion's RelayAddressGenerator: it binds relay
// sockets inside the configured port range and wraps each one so that every
// datagram is counted and checked against the peer policy.
type relayAllocator struct {
	bindIP    netip.Addr
	advertise netip.Addr
	portMin   uint16
	portMax   uint16
	policy    *peerPolicy
	metrics   *metrics
	log       *slog.Logger
}

// Validate is called by pion/turn when the server starts.
func (r *relayAllocator) Validate() error {
	if !r.advertise.Is4() || !r.bindIP.Is4() {
		return fmt.Errorf("turn: relay addresses must be IPv4 (bind %v, advertise %v)", r.bindIP, r.advertise)
	}
	return nil
}

// AllocatePacketConn binds a relay socket. requestedPort is non-zero when the
// client asked for EVEN-PORT or presented a RESERVATION-TOKEN.
func (r *relayAllocator) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	var (
		conn net.PacketConn
		err  error
	)
	switch {
	case requestedPort != 0:
		if r.portMin != 0 && (requestedPort < int(r.portMin) || requestedPort > int(r.portMax)) {
			return nil, nil, fmt.Errorf("turn: requested relay port %d outside %d-%d", requestedPort, r.portMin, r.portMax)
		}
		conn, err = r.listen(network, uint16(requestedPort))
	case r.portMin == 0:
		conn, err = r.listen(network, 0)
	default:
		conn, err = r.listenInRange(network)
	}
	if err != nil {
		return nil, nil, err
	}
	local, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("turn: relay socket has non-UDP address %v", conn.LocalAddr())
	}
	relayAddr := &net.UDPAddr{IP: r.advertise.AsSlice(), Port: local.Port}
	return &relayConn{PacketConn: conn, policy: r.policy, metrics: r.metrics, log: r.log}, relayAddr, nil
}

// AllocateConn refuses TCP relay allocations (see errTCPRelay).
func (r *relayAllocator) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, errTCPRelay
}

func (r *relayAllocator) listen(network string, port uint16) (net.PacketConn, error) {
	addr := net.JoinHostPort(r.bindIP.String(), strconv.Itoa(int(port)))
	conn, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, fmt.Errorf("turn: bind relay socket %s: %w", addr, err)
	}
	return conn, nil
}

// listenInRange tries every port of the range once, starting at a random
// one, so that a nearly full range still finds its last free port and
// relay ports are not predictable.
func (r *relayAllocator) listenInRange(network string) (net.PacketConn, error) {
	size := int(r.portMax) - int(r.portMin) + 1
	start := rand.IntN(size) //nolint:gosec // unpredictability is a nicety, not a defence
	var lastErr error
	for i := range size {
		port := uint16(int(r.portMin) + (start+i)%size)
		conn, err := r.listen(network, port)
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("turn: no free relay port in %d-%d: %w", r.portMin, r.portMax, lastErr)
}

// relayConn is one allocation's relay socket. It enforces the per-port part
// of the peer policy that TURN permissions (per IP) cannot express, and
// counts relayed traffic.
type relayConn struct {
	net.PacketConn
	policy  *peerPolicy
	metrics *metrics
	log     *slog.Logger
}

// WriteTo sends a client's datagram to a peer. A refused datagram is
// dropped silently (reported as written): pion/turn would only log an error
// for it, and a UDP relay owes the client no delivery.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	peer := addrPort(addr)
	if ok, reason := c.policy.allowPacket(peer); !ok {
		c.drop(reason, peer, "to_peer")
		return len(p), nil
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil {
		c.metrics.packetsToPeer.Add(1)
		c.metrics.bytesToPeer.Add(uint64(n))
	}
	return n, err
}

// ReadFrom returns the next datagram from a peer the policy allows.
// pion/turn then applies the allocation's permissions on top.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		peer := addrPort(addr)
		if ok, reason := c.policy.allowPacket(peer); !ok {
			c.drop(reason, peer, "from_peer")
			continue
		}
		c.metrics.packetsFromPeer.Add(1)
		c.metrics.bytesFromPeer.Add(uint64(n))
		return n, addr, nil
	}
}

func (c *relayConn) drop(reason string, peer netip.AddrPort, direction string) {
	c.metrics.inc(c.metrics.dropped, reason)
	// A flood of refused datagrams must not cost formatting when debug
	// logging is off.
	if !c.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	c.log.Debug("turn: relayed datagram dropped by peer policy",
		"relay", c.LocalAddr().String(), "peer", peer.String(), "direction", direction, "reason", reason)
}

// addrPort converts a relay peer address without allocating.
func addrPort(addr net.Addr) netip.AddrPort {
	if u, ok := addr.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(addr.String())
	return ap
}
