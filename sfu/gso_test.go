package sfu

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// A burst of equal-sized packets and a shorter last one, gathered while a
// send path writes a batch, arrives as separate datagrams, whole and in
// order; writes to other addresses meanwhile go straight through.
//
// Both socket families: the media socket is IPv4 when bound to an IPv4
// address, and dual-stack IPv6 (IPv4 peers as mapped addresses) when bound
// to all of them; the raw sends (rawsend.go) write either's addresses.
func TestGSOBurstArrivesAsDatagrams(t *testing.T) {
	for _, tc := range []struct {
		name string
		bind *net.UDPAddr
	}{
		{"ipv4 socket", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}},
		{"dual-stack socket", &net.UDPAddr{}},
	} {
		t.Run(tc.name, func(t *testing.T) { testGSOBurst(t, tc.bind) })
	}
}

func testGSOBurst(t *testing.T, bind *net.UDPAddr) {
	sock, err := net.ListenUDP("udp", bind)
	if err != nil {
		t.Fatal(err)
	}
	g := newGSOConn(sock, false, slog.Default())
	defer g.Close()
	if !g.on.Load() {
		if err := probeGSO(sock); err != nil {
			t.Skipf("kernel without UDP GSO: %v", err) // the fallback is what runs there
		}
	}
	if g.raw == nil {
		t.Fatal("GSO on, but the bursts send through the net package (rawsend.go could not read the socket's family)")
	}
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()

	bu := g.newBurst()
	if !g.begin(bu, to) {
		t.Fatal("burst not started")
	}
	var want [][]byte
	for i := range 70 { // more than one send's worth of segments
		p := bytes.Repeat([]byte{byte(i)}, 1200)
		if i == 69 {
			p = p[:300]
		}
		want = append(want, p)
		if _, err := g.WriteToAddrPort(p, to); err != nil {
			t.Fatal(err)
		}
		if i == 10 {
			if _, err := g.WriteToAddrPort([]byte("direct"), other.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
		}
	}
	g.end(bu)
	if g.gsoSends.Load() < 2 || g.gsoPackets.Load() < 64 {
		t.Errorf("%d GSO sends carried %d packets; want the burst gathered", g.gsoSends.Load(), g.gsoPackets.Load())
	}
	buf := make([]byte, 2000)
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, w := range want {
		n, err := rx.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], w) {
			t.Fatalf("datagram %d: %d bytes starting %d, want %d bytes starting %d", i, n, buf[0], len(w), w[0])
		}
	}
	other.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := other.Read(buf); err != nil || string(buf[:n]) != "direct" {
		t.Fatalf("write to another address: %q, %v", buf[:n], err)
	}
	// No burst open: a write goes straight out.
	if _, err := g.WriteToAddrPort([]byte("after"), netip.AddrPortFrom(to.Addr(), to.Port())); err != nil {
		t.Fatal(err)
	}
	if n, err := rx.Read(buf); err != nil || string(buf[:n]) != "after" {
		t.Fatalf("write after the burst: %q, %v", buf[:n], err)
	}
}

// A writer that looked a burst up just before its batch ended (an RTCP
// report racing the send path) sends its packet at once, rather than
// leave it in the burst until the next batch, and concurrent batches and
// late writers touch the burst only under its lock (go test -race).
func TestGSOLateWriterSendsDirectly(t *testing.T) {
	sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	g := newGSOConn(sock, false, slog.Default())
	defer g.Close()
	g.on.Store(true) // begin/add/end only; a single-packet flush is a plain send
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()

	bu := g.newBurst()
	if !g.begin(bu, to) {
		t.Fatal("burst not started")
	}
	g.end(bu)
	if _, err := bu.add(g, []byte("late"), to); err != nil {
		t.Fatal(err)
	}
	_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, err := rx.Read(buf)
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("late packet: %q %v, want it sent at once", buf[:n], err)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			_, _ = bu.add(g, []byte("rtcp"), to)
		}
	}()
	for range 200 {
		if g.begin(bu, to) {
			g.end(bu)
		}
	}
	<-done
}
