package turn

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// A client with valid credentials allocates a relay, and datagrams cross it
// both ways between the client and the SFU.
func TestRelayBetweenClientAndSFU(t *testing.T) {
	t.Parallel()
	sfu := listenPeer(t, sfuHost)
	srv := startServer(t, []netip.AddrPort{sfu.addr()}, nil)

	c := newUDPClient(t, srv, srv.Credentials("alice"))
	relay := c.allocate(t)
	relayAddr := relay.LocalAddr().(*net.UDPAddr)
	if got := relayAddr.AddrPort().Addr(); got != relayHost {
		t.Fatalf("relay address %v, want on %v", relayAddr, relayHost)
	}

	// Client -> relay -> SFU. The SFU sees the relay address as the source.
	for i := range 3 {
		if _, err := relay.WriteTo(fmt.Appendf(nil, "up %d", i), sfu.udpAddr()); err != nil {
			t.Fatalf("WriteTo SFU: %v", err)
		}
	}
	waitFor(t, "SFU to receive 3 datagrams", 5*time.Second, func() bool { return sfu.count.Load() == 3 })
	sfu.mu.Lock()
	from := sfu.froms[0]
	sfu.mu.Unlock()
	if from.Port() != uint16(relayAddr.Port) {
		t.Fatalf("SFU got datagram from %v, want relay %v", from, relayAddr)
	}
	if got := string(sfu.packets()[0]); got != "up 0" {
		t.Fatalf("SFU got %q", got)
	}

	// SFU -> relay -> client.
	if _, err := sfu.conn.WriteToUDP([]byte("down"), relayAddr); err != nil {
		t.Fatalf("SFU write: %v", err)
	}
	buf := make([]byte, 1500)
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, src, err := relay.ReadFrom(buf)
	if err != nil {
		t.Fatalf("client read from relay: %v", err)
	}
	if string(buf[:n]) != "down" || src.String() != sfu.udpAddr().String() {
		t.Fatalf("client got %q from %v, want %q from %v", buf[:n], src, "down", sfu.udpAddr())
	}

	st := srv.Stats()
	if st.ActiveAllocations != 1 || st.AllocationsCreated != 1 {
		t.Fatalf("allocations active=%d created=%d, want 1 and 1", st.ActiveAllocations, st.AllocationsCreated)
	}
	if st.PacketsToPeer != 3 || st.PacketsFromPeer != 1 || st.BytesToPeer != 12 || st.BytesFromPeer != 4 {
		t.Fatalf("relayed counters %+v", st)
	}
}

// Expired, wrong and missing credentials are refused, each for its reason.
func TestAuthRefusals(t *testing.T) {
	t.Parallel()
	sfu := listenPeer(t, sfuHost)
	srv := startServer(t, []netip.AddrPort{sfu.addr()}, nil)

	good := srv.Credentials("alice")
	expired := MintCredentials([]byte("test-secret"), "alice", time.Hour, time.Now().Add(-2*time.Hour))
	wrongPassword := good
	wrongPassword.Password = MintCredentials([]byte("other-secret"), "alice", time.Hour, time.Now()).Password
	otherSecret := MintCredentials([]byte("other-secret"), "alice", time.Hour, time.Now())
	missing := Credentials{}
	noExpiry := Credentials{Username: "alice", Password: "x"}

	for _, tc := range []struct {
		name   string
		cred   Credentials
		reason string
	}{
		{"expired", expired, authExpired},
		{"wrong password", wrongPassword, authBadPassword},
		{"other secret", otherSecret, authBadPassword},
		{"missing", missing, authMissing},
		{"no expiry", noExpiry, authMalformed},
	} {
		before := srv.Stats().AuthFailures[tc.reason]
		_, err := newUDPClient(t, srv, tc.cred).Allocate()
		if err == nil {
			t.Fatalf("%s: Allocate succeeded", tc.name)
		}
		// pion/turn answers a refused long-term credential with 400.
		if code := turnCode(err); code != stun.CodeBadRequest {
			t.Fatalf("%s: error %v, want a 400 TURN error", tc.name, err)
		}
		if got := srv.Stats().AuthFailures[tc.reason]; got != before+1 {
			t.Fatalf("%s: auth failures[%s] = %d, want %d", tc.name, tc.reason, got, before+1)
		}
	}
	if st := srv.Stats(); st.AllocationsCreated != 0 {
		t.Fatalf("%d allocations created with bad credentials", st.AllocationsCreated)
	}

	// No MESSAGE-INTEGRITY at all: a 401 challenge, never an allocation.
	raw := newRawClient(t, srv)
	res := raw.roundTrip(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		requestedUDP, stun.Fingerprint)
	if code := errorCode(res); code != stun.CodeUnauthorized {
		t.Fatalf("unauthenticated Allocate: %v, want 401", res)
	}

	// And the good credentials still work on the same server.
	newUDPClient(t, srv, good).allocate(t)
}

// The quota refuses a user's allocation past the limit with 486, counts
// across freshly minted credentials, leaves other users alone, and frees
// the slot when an allocation is released.
func TestAllocationQuota(t *testing.T) {
	t.Parallel()
	sfu := listenPeer(t, sfuHost)
	srv := startServer(t, []netip.AddrPort{sfu.addr()}, func(c *Config) { c.MaxAllocationsPerUser = 2 })

	first := newUDPClient(t, srv, srv.Credentials("alice")).allocate(t)
	// Second credentials for the same user (another join): same quota.
	newUDPClient(t, srv, MintCredentials([]byte("test-secret"), "alice", time.Minute, time.Now())).allocate(t)

	_, err := newUDPClient(t, srv, srv.Credentials("alice")).Allocate()
	if code := turnCode(err); code != stun.CodeAllocQuotaReached {
		t.Fatalf("third allocation for alice: %v, want 486", err)
	}
	if got := srv.Stats().AllocationsRefusedQuota; got != 1 {
		t.Fatalf("quota refusals = %d, want 1", got)
	}

	newUDPClient(t, srv, srv.Credentials("bob")).allocate(t)

	// Releasing one (a Refresh with lifetime 0) frees a slot.
	if err := first.Close(); err != nil {
		t.Fatalf("close allocation: %v", err)
	}
	waitFor(t, "alice's allocation to be released", 5*time.Second, func() bool {
		return srv.quota.active("alice") == 1
	})
	newUDPClient(t, srv, srv.Credentials("alice")).allocate(t)
	if st := srv.Stats(); st.ActiveAllocations != 3 || st.AllocationsCreated != 4 {
		t.Fatalf("active=%d created=%d, want 3 and 4", st.ActiveAllocations, st.AllocationsCreated)
	}
}

// Permissions to loopback (other than the SFU), private, link-local, CGNAT
// and multicast peers and to the relay's own host are refused, and the
// relay forwards nothing to a refused address or to a port of the SFU's
// host the SFU does not use, while the SFU gets everything.
func TestPeerPolicy(t *testing.T) {
	t.Parallel()
	sfu := listenPeer(t, sfuHost)
	sfuOtherPort := listenPeer(t, sfuHost) // same IP as the SFU, not its port
	refused := listenPeer(t, otherHost)    // loopback, not the SFU
	srv := startServer(t, []netip.AddrPort{sfu.addr()}, nil)

	c := newUDPClient(t, srv, srv.Credentials("mallory"))
	relay := c.allocate(t)

	// Addresses that never get a permission. Only the CreatePermission
	// request travels (to the relay on 127.0.0.1); nothing is sent to them.
	for _, target := range []string{
		"127.0.0.1:9", // the relay's own address
		refused.addr().String(),
		"10.1.2.3:5000",
		"172.16.0.1:5000",
		"192.168.1.1:5000",
		"169.254.169.254:80",
		"100.64.0.1:5000",
		"224.0.0.251:5353",
		"0.0.0.0:5000",
	} {
		err := c.CreatePermission(net.UDPAddrFromAddrPort(netip.MustParseAddrPort(target)))
		if err == nil {
			t.Fatalf("CreatePermission(%s) accepted", target)
		}
	}
	// Another allocation on this relay counts as the relay's own host too:
	// no relay-to-relay loops.
	other := newUDPClient(t, srv, srv.Credentials("other")).allocate(t)
	if err := c.CreatePermission(other.LocalAddr()); err == nil {
		t.Fatalf("CreatePermission to another relay address accepted")
	}
	// (Which of self and non_global a private target counts under depends
	// on this host's own addresses; the total does not.)
	refusals := srv.Stats().PermissionRefusals
	if refusals[peerSelf]+refusals[peerNonGlobal] != 9 || refusals[peerSelf] < 2 || refusals[peerInvalid] != 1 {
		t.Fatalf("permission refusals %v, want self>=2, self+non_global=9, invalid=1", refusals)
	}

	// The pion client asks for the permission first, so a refused WriteTo
	// sends no data.
	if _, err := relay.WriteTo([]byte("probe"), refused.udpAddr()); err == nil {
		t.Fatalf("WriteTo refused loopback peer succeeded")
	}
	// A client that skips the permission and sends a Send indication anyway
	// is ignored by the relay.
	ind, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
		peerAttr(refused.addr()), rawAttr{stun.AttrData, []byte("sneak")}, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.WriteTo(ind.Raw, net.UDPAddrFromAddrPort(srv.Addrs().UDP)); err != nil {
		t.Fatal(err)
	}
	// The SFU's IP has a permission (per IP), but its other ports are
	// dropped by the relay socket.
	for range 3 {
		if _, err := relay.WriteTo([]byte("other port"), sfuOtherPort.udpAddr()); err != nil {
			t.Fatalf("WriteTo SFU host, other port: %v", err)
		}
	}

	// Now traffic the relay must carry. Everything above was handled by the
	// relay before these (one client socket, one server read loop), so
	// once the SFU has them all, any leak would already have landed.
	const n = 20
	for i := range n {
		if _, err := relay.WriteTo(fmt.Appendf(nil, "media %d", i), sfu.udpAddr()); err != nil {
			t.Fatalf("WriteTo SFU: %v", err)
		}
	}
	waitFor(t, "SFU to receive all datagrams", 5*time.Second, func() bool { return sfu.count.Load() == n })
	if got := refused.count.Load(); got != 0 {
		t.Fatalf("refused loopback peer received %d datagrams: %q", got, refused.packets())
	}
	if got := sfuOtherPort.count.Load(); got != 0 {
		t.Fatalf("SFU host's other port received %d datagrams: %q", got, sfuOtherPort.packets())
	}
	if got := srv.Stats().DroppedPackets[peerSFUPort]; got != 3 {
		t.Fatalf("dropped to other SFU port = %d, want 3", got)
	}

	// Inbound: datagrams from the SFU host's other port do not reach the
	// client; the SFU's own do.
	relayAddr := relay.LocalAddr().(*net.UDPAddr)
	for range 3 {
		if _, err := sfuOtherPort.conn.WriteToUDP([]byte("spoof"), relayAddr); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := sfu.conn.WriteToUDP(fmt.Appendf(nil, "down %d", i), relayAddr); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	for i := range 3 {
		_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, from, err := relay.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if from.String() != sfu.udpAddr().String() || string(buf[:m]) != fmt.Sprintf("down %d", i) {
			t.Fatalf("client got %q from %v, want %q from the SFU %v", buf[:m], from, fmt.Sprintf("down %d", i), sfu.udpAddr())
		}
	}
	if got := srv.Stats().DroppedPackets[peerSFUPort]; got != 6 {
		t.Fatalf("dropped on SFU host's other port = %d, want 6", got)
	}
}

// ChannelBind is judged like CreatePermission: refused peers get 401 and
// ChannelData on the unbound channel goes nowhere.
func TestChannelBindRefused(t *testing.T) {
	t.Parallel()
	sfu := listenPeer(t, sfuHost)
	refused := listenPeer(t, otherHost)
	srv := startServer(t, []netip.AddrPort{sfu.addr()}, nil)

	raw := newRawClient(t, srv)
	raw.allocate(srv.Credentials("mallory"))

	for _, target := range []netip.AddrPort{refused.addr(), netip.MustParseAddrPort("192.168.0.10:5000"),
		netip.MustParseAddrPort("169.254.0.1:5000")} {
		res := raw.request(stun.MethodChannelBind, channelAttr(0x4000), peerAttr(target))
		if code := errorCode(res); code != stun.CodeUnauthorized {
			t.Fatalf("ChannelBind to %v: %v, want 401", target, res)
		}
	}
	raw.send(channelData(0x4000, []byte("sneak")))

	res := raw.request(stun.MethodChannelBind, channelAttr(0x4001), peerAttr(sfu.addr()))
	if res.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("ChannelBind to SFU: %v (code %d)", res, errorCode(res))
	}
	raw.send(channelData(0x4001, []byte("media")))
	waitFor(t, "SFU to receive channel data", 5*time.Second, func() bool { return sfu.count.Load() == 1 })
	if got := refused.count.Load(); got != 0 {
		t.Fatalf("refused peer received %d datagrams", got)
	}
	if got := srv.Stats().PermissionRefusals[peerNonGlobal]; got != 3 {
		t.Fatalf("permission refusals %v, want non_global=3", srv.Stats().PermissionRefusals)
	}
}

// An address outside the default policy becomes reachable when listed in
// AllowPeers.
func TestAllowPeers(t *testing.T) {
	t.Parallel()
	sfu := listenPeer(t, sfuHost)
	extra := listenPeer(t, otherHost)
	srv := startServer(t, []netip.AddrPort{sfu.addr()}, func(c *Config) {
		c.AllowPeers = []netip.Prefix{netip.PrefixFrom(otherHost, 32)}
	})
	relay := newUDPClient(t, srv, srv.Credentials("alice")).allocate(t)
	if _, err := relay.WriteTo([]byte("hi"), extra.udpAddr()); err != nil {
		t.Fatalf("WriteTo allow-listed peer: %v", err)
	}
	waitFor(t, "allow-listed peer to receive", 5*time.Second, func() bool { return extra.count.Load() == 1 })
}

// The SFU address can change at run time; the new one is reachable and the
// old one no longer is, even through its existing permission.
func TestSetSFUAddrs(t *testing.T) {
	t.Parallel()
	oldSFU := listenPeer(t, sfuHost)
	newSFU := listenPeer(t, otherHost)
	srv := startServer(t, []netip.AddrPort{oldSFU.addr()}, nil)
	relay := newUDPClient(t, srv, srv.Credentials("alice")).allocate(t)

	if _, err := relay.WriteTo([]byte("1"), oldSFU.udpAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "old SFU to receive", 5*time.Second, func() bool { return oldSFU.count.Load() == 1 })

	srv.SetSFUAddrs([]netip.AddrPort{newSFU.addr()})
	if _, err := relay.WriteTo([]byte("2"), oldSFU.udpAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.WriteTo([]byte("3"), newSFU.udpAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "new SFU to receive", 5*time.Second, func() bool { return newSFU.count.Load() == 1 })
	if got := oldSFU.count.Load(); got != 1 {
		t.Fatalf("old SFU received %d datagrams after removal, want 1", got)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// The counters reach a Prometheus registry under their documented names.
func TestPrometheusMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	sfu := listenPeer(t, sfuHost)
	srv := startServer(t, []netip.AddrPort{sfu.addr()}, func(c *Config) { c.Registerer = reg })

	relay := newUDPClient(t, srv, srv.Credentials("alice")).allocate(t)
	if _, err := relay.WriteTo([]byte("hello sfu"), sfu.udpAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "SFU to receive", 5*time.Second, func() bool { return sfu.count.Load() == 1 })
	_, _ = newUDPClient(t, srv, Credentials{Username: "1:alice", Password: "x"}).Allocate()
	c := newUDPClient(t, srv, srv.Credentials("bob"))
	c.allocate(t)
	_ = c.CreatePermission(&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000})

	got := gather(t, reg)
	for name, want := range map[string]float64{
		"huddle_turn_allocations_active":                             2,
		"huddle_turn_allocations_created_total":                      2,
		`huddle_turn_allocations_refused_total{reason="quota"}`:      0,
		`huddle_turn_auth_failures_total{reason="expired"}`:          1,
		`huddle_turn_permission_refusals_total{reason="non_global"}`: 1,
		`huddle_turn_relayed_packets_total{direction="to_peer"}`:     1,
		`huddle_turn_relayed_bytes_total{direction="to_peer"}`:       9,
		`huddle_turn_relayed_bytes_total{direction="from_peer"}`:     0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}

	// Closing unregisters, so a new relay can use the same registry.
	_ = srv.Close()
	srv2, err := New(Config{Registerer: reg, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("second relay on the same registry: %v", err)
	}
	_ = srv2.Close()
}

// gather flattens a registry into "name{label=\"value\"}" -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += fmt.Sprintf("{%s=%q}", l.GetName(), l.GetValue())
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// Relay sockets are bound inside PortMin..PortMax.
func TestRelayPortRange(t *testing.T) {
	t.Parallel()
	// A stretch of ports that was free a moment ago; the allocator scans the
	// whole range, so a port taken meanwhile only moves it along.
	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lo := probe.LocalAddr().(*net.UDPAddr).Port
	_ = probe.Close()
	if lo > 65535-64 {
		lo = 65535 - 64
	}
	hi := lo + 63
	sfu := listenPeer(t, sfuHost)
	srv := startServer(t, []netip.AddrPort{sfu.addr()}, func(c *Config) {
		c.PortMin, c.PortMax = uint16(lo), uint16(hi)
	})
	seen := map[int]bool{}
	for i := range 3 {
		relay := newUDPClient(t, srv, srv.Credentials(fmt.Sprintf("user%d", i))).allocate(t)
		port := relay.LocalAddr().(*net.UDPAddr).Port
		if port < lo || port > hi || seen[port] {
			t.Fatalf("relay port %d: outside %d-%d or reused", port, lo, hi)
		}
		seen[port] = true
		relayAndCheck(t, relay, sfu)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// relayAndCheck sends one datagram through relay to sfu and back. The
// payloads are longer than 4 bytes: pion's STUNConn cannot frame a
// ChannelData message shorter than 9 bytes on a stream (pion/turn v4.1.4),
// which real media never is.
func relayAndCheck(t *testing.T, relay net.PacketConn, sfu *peer) {
	t.Helper()
	before := sfu.count.Load()
	if _, err := relay.WriteTo([]byte("ping from client"), sfu.udpAddr()); err != nil {
		t.Fatalf("WriteTo SFU: %v", err)
	}
	waitFor(t, "SFU to receive", 5*time.Second, func() bool { return sfu.count.Load() == before+1 })
	if _, err := sfu.conn.WriteToUDP([]byte("pong from sfu"), relay.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := relay.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("pong from sfu")) {
		t.Fatalf("read from relay: %q, %v", buf[:n], err)
	}
}
