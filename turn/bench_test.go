package turn

import (
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// window bounds the datagrams in flight so the benchmark measures what the
// relay forwards, not how fast a socket buffer overflows.
const window = 128

// BenchmarkRelayClientToSFU measures datagrams per second from a pion TURN
// client (ChannelData over UDP) through the relay to a UDP socket standing
// in for the SFU, all on loopback. 1200-byte payloads, like video RTP.
func BenchmarkRelayClientToSFU(b *testing.B) {
	sfu, relay := benchSetup(b)
	target := sfu.udpAddr()
	payload := make([]byte, 1200)
	benchPump(b, &sfu.count, func() error {
		_, err := relay.WriteTo(payload, target)
		return err
	})
}

// BenchmarkRelaySFUToClient measures the other direction: the SFU sends to
// the relay address and the client reads from its relay connection.
func BenchmarkRelaySFUToClient(b *testing.B) {
	sfu, relay := benchSetup(b)
	relayAddr := relay.LocalAddr().(*net.UDPAddr)
	var got atomic.Int64
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := relay.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	payload := make([]byte, 1200)
	benchPump(b, &got, func() error {
		_, err := sfu.conn.WriteToUDP(payload, relayAddr)
		return err
	})
}

// BenchmarkPolicyAllowPacket is the per-datagram policy cost.
func BenchmarkPolicyAllowPacket(b *testing.B) {
	p := newPeerPolicy([]netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
		[]netip.AddrPort{netip.MustParseAddrPort("203.0.113.10:7882")})
	p.setSelf(localAddrs())
	for _, tc := range []struct{ name, ap string }{
		{"sfu", "203.0.113.10:7882"},
		{"global", "8.8.8.8:3478"},
		{"private", "192.168.1.1:3478"},
	} {
		ap := netip.MustParseAddrPort(tc.ap)
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				p.allowPacket(ap)
			}
		})
	}
}

func benchSetup(b *testing.B) (*peer, net.PacketConn) {
	b.Helper()
	sfu := listenPeer(b, sfuHost)
	srv := startServer(b, []netip.AddrPort{sfu.addr()}, func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) })
	relay := newUDPClient(b, srv, srv.Credentials("bench")).allocate(b)
	// Warm up until the client has bound a channel, so the timed part is
	// ChannelData rather than Send indications.
	for i := range 200 {
		if _, err := relay.WriteTo(make([]byte, 100), sfu.udpAddr()); err != nil {
			b.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(b, "warm-up datagrams", 5*time.Second, func() bool { return sfu.count.Load() > 150 })
	if _, err := sfu.conn.WriteToUDP(make([]byte, 100), relay.LocalAddr().(*net.UDPAddr)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := relay.ReadFrom(buf); err != nil {
		b.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Time{})
	return sfu, relay
}

// benchPump sends b.N datagrams with at most window in flight, counting
// arrivals through received, and reports delivered packets per second and
// loss. A window stuck for 100 ms (datagrams lost) is written off as lost so
// the benchmark cannot hang.
func benchPump(b *testing.B, received *atomic.Int64, send func() error) {
	base := received.Load()
	var sent, writtenOff int64
	var stalled time.Time
	b.ResetTimer()
	start := time.Now()
	for sent < int64(b.N) {
		delivered := received.Load() - base
		if sent-delivered-writtenOff >= window {
			switch {
			case stalled.IsZero():
				stalled = time.Now()
			case time.Since(stalled) > 100*time.Millisecond:
				writtenOff = sent - delivered
				stalled = time.Time{}
			}
			time.Sleep(10 * time.Microsecond)
			continue
		}
		stalled = time.Time{}
		if err := send(); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	// Drain: wait for the last datagrams, or 100 ms without progress.
	last, lastChange := received.Load(), time.Now()
	for received.Load()-base < sent && time.Since(lastChange) < 100*time.Millisecond {
		time.Sleep(50 * time.Microsecond)
		if r := received.Load(); r != last {
			last, lastChange = r, time.Now()
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	delivered := min(received.Load()-base, sent)
	b.ReportMetric(float64(delivered)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(100*float64(sent-delivered)/float64(sent), "%loss")
}
