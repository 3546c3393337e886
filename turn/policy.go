package turn

import (
	"net"
	"net/netip"
	"sync/atomic"
)

// Why a peer address is allowed or refused; used in logs and metrics.
const (
	peerSFU       = "sfu"        // one of the SFU's media addresses
	peerAllowList = "allow_list" // inside Config.AllowPeers
	peerGlobal    = "global"     // an ordinary Internet address
	peerSelf      = "self"       // an address of this host, not the SFU's
	peerNonGlobal = "non_global" // loopback, private, link-local, ...
	peerInvalid   = "invalid"    // unparsable or zero address
	peerSFUPort   = "sfu_port"   // SFU IP, but a port the SFU does not use
)

// nonGlobal lists the special-purpose ranges (RFC 6890 and its updates)
// beyond those netip classifies itself. A relay that reaches them lets any
// participant probe the server's own networks.
var nonGlobal = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: embeds an IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF assignments, incl. Teredo
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// isNonGlobal reports whether ip is anything but an ordinary global unicast
// address: loopback, RFC 1918 and ULA (fc00::/7), link-local, multicast,
// unspecified, CGNAT, documentation, reserved, or an IPv6 form that wraps an
// IPv4 address the relay could not check.
func isNonGlobal(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		// IsGlobalUnicast is false for loopback, link-local, multicast,
		// unspecified and the IPv4 broadcast address.
		return true
	}
	for _, p := range nonGlobal {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// sfuSet is an immutable snapshot of the SFU's media addresses: IP -> ports,
// where port 0 stands for every port.
type sfuSet map[netip.Addr][]uint16

// peerPolicy decides which peers the relay may talk to. TURN permissions
// are per IP (RFC 8656 section 9), so the permission handler can only judge
// IPs; the relay socket wrapper (relayconn.go) calls allowPacket for every
// datagram to also hold the SFU's IP to the SFU's own ports.
type peerPolicy struct {
	allow []netip.Prefix
	sfu   atomic.Pointer[sfuSet]
	self  atomic.Pointer[map[netip.Addr]struct{}]
}

func newPeerPolicy(allow []netip.Prefix, sfu []netip.AddrPort) *peerPolicy {
	p := &peerPolicy{}
	for _, pfx := range allow {
		// Unmap so that an IPv4-mapped prefix matches plain IPv4 peers.
		p.allow = append(p.allow, netip.PrefixFrom(pfx.Addr().Unmap(), unmappedBits(pfx)).Masked())
	}
	p.setSFU(sfu)
	p.setSelf(nil)
	return p
}

func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}

// setSFU replaces the SFU media addresses. Readers see either the old or the
// new set, never a mix, without taking a lock on the packet path.
func (p *peerPolicy) setSFU(addrs []netip.AddrPort) {
	set := make(sfuSet, len(addrs))
	for _, ap := range addrs {
		ip := ap.Addr().Unmap()
		switch {
		case !ip.IsValid():
		case ip.IsUnspecified():
			// An SFU listening on every interface ("0.0.0.0:7882", or
			// "[::]:7882", which Go makes dual-stack) is reachable on each
			// of this host's addresses at that port.
			for _, local := range localAddrs() {
				if ip.Is6() || local.Is4() {
					set[local] = append(set[local], ap.Port())
				}
			}
		default:
			set[ip] = append(set[ip], ap.Port())
		}
	}
	p.sfu.Store(&set)
}

// setSelf records this host's own addresses. The relay never sends to them
// unless they are the SFU's (then only to its ports) or allow-listed: a
// public address of this host is global, yet reaching it would expose every
// UDP service the host runs, the TURN listener itself included (relay
// loops).
func (p *peerPolicy) setSelf(addrs []netip.Addr) {
	set := make(map[netip.Addr]struct{}, len(addrs))
	for _, a := range addrs {
		set[a.Unmap()] = struct{}{}
	}
	p.self.Store(&set)
}

func (p *peerPolicy) allowListed(ip netip.Addr) bool {
	for _, pfx := range p.allow {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// permitIP judges a peer IP for CreatePermission and ChannelBind.
func (p *peerPolicy) permitIP(ip netip.Addr) (ok bool, reason string) {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid() || ip.IsUnspecified():
		return false, peerInvalid
	case p.isSFU(ip):
		return true, peerSFU
	case p.allowListed(ip):
		return true, peerAllowList
	case p.isSelf(ip):
		return false, peerSelf
	case isNonGlobal(ip):
		return false, peerNonGlobal
	default:
		return true, peerGlobal
	}
}

// allowPacket judges one datagram to or from peer. It repeats permitIP
// because the SFU set may have shrunk since the permission was granted, and
// adds the port check for the SFU's IPs.
func (p *peerPolicy) allowPacket(peer netip.AddrPort) (ok bool, reason string) {
	ip := peer.Addr().Unmap()
	if ports, isSFU := (*p.sfu.Load())[ip]; isSFU {
		for _, port := range ports {
			if port == 0 || port == peer.Port() {
				return true, peerSFU
			}
		}
		// Another port of the SFU's host: only an explicit allow list
		// entry opens it.
		if p.allowListed(ip) {
			return true, peerAllowList
		}
		return false, peerSFUPort
	}
	return p.permitIP(ip)
}

func (p *peerPolicy) isSFU(ip netip.Addr) bool {
	_, ok := (*p.sfu.Load())[ip]
	return ok
}

func (p *peerPolicy) isSelf(ip netip.Addr) bool {
	_, ok := (*p.self.Load())[ip]
	return ok
}

// localAddrs lists the IPs configured on this host's interfaces. It reads
// the interface table only.
func localAddrs() []netip.Addr {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(ifAddrs))
	for _, a := range ifAddrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, pfx.Addr().Unmap())
		}
	}
	return out
}

// ipFromNet converts a net.IP to a netip.Addr (invalid when malformed).
func ipFromNet(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
