package sfu

import (
	"net"
	"testing"
	"time"
)

// stampedLoopback is a stamping reader on a loopback socket and a client
// socket connected to it, both closed when the test ends.
func stampedLoopback(t *testing.T) (*rxReader, *net.UDPConn) {
	t.Helper()
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r := newRXReader(srv)
	if r == nil {
		t.Fatal("the kernel refused SO_TIMESTAMPNS on a UDP socket")
	}
	cli, err := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return r, cli
}

// The media socket's reader notes the kernel's receive stamp of each RTP
// packet by SSRC and sequence number, and of nothing else (STUN, RTCP).
func TestRXStampsNoteRTPArrivals(t *testing.T) {
	r, cli := stampedLoopback(t)

	rtpPacket := []byte{0x80, 96, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 0xaa}
	rtcpPacket := []byte{0x80, 200, 0x00, 0x06, 0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 0, 0}
	stunPacket := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0}
	before := time.Now().UnixNano()
	buf := make([]byte, 1500)
	for _, p := range [][]byte{stunPacket, rtcpPacket, rtpPacket} {
		if _, err := cli.Write(p); err != nil {
			t.Fatal(err)
		}
		n, _, err := r.read(buf)
		if err != nil || n != len(p) {
			t.Fatalf("read %d bytes, %v; want %d", n, err, len(p))
		}
	}
	after := time.Now().UnixNano()
	at, ok := r.table.arrival(0xdeadbeef, 0x1234)
	if !ok {
		t.Fatal("the RTP packet's arrival was not noted")
	}
	if at < before || at > after {
		t.Fatalf("arrival %d outside the send (%d) and the read (%d)", at, before, after)
	}
	// The RTCP packet's bytes 8-12 and 2-4 read as SSRC 0 and sequence 6;
	// STUN's as 0 and 0: neither was noted.
	for _, k := range [][2]uint32{{0, 6}, {0, 0}} {
		if _, ok := r.table.arrival(k[0], uint16(k[1])); ok {
			t.Fatalf("a non-RTP packet was noted as ssrc %d seq %d", k[0], k[1])
		}
	}
	if _, ok := r.table.arrival(0xdeadbeef, 0x1235); ok {
		t.Fatal("a packet that never came has an arrival")
	}
	var none *rxStamps
	if _, ok := none.arrival(1, 1); ok {
		t.Fatal("no table, yet an arrival")
	}
}

// A read into an empty buffer (it takes the datagram, as the net package's
// does) leaves the reader as it was: the next read still stamps.
func TestRXReaderEmptyBufferKeepsStamping(t *testing.T) {
	r, cli := stampedLoopback(t)
	cli.Write([]byte("junk"))
	if _, _, err := r.read(nil); err != nil {
		t.Fatal(err)
	}
	p := []byte{0x80, 96, 0, 5, 0, 0, 0, 1, 0, 0, 0, 8, 0xaa}
	cli.Write(p)
	buf := make([]byte, 1500)
	if n, _, err := r.read(buf); err != nil || n != len(p) {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	if _, ok := r.table.arrival(8, 5); !ok {
		t.Fatal("the read after an empty one noted no arrival")
	}
}

// Reading the socket with stamps allocates nothing per packet.
func TestRXStampsReadAllocatesNothing(t *testing.T) {
	r, cli := stampedLoopback(t)
	p := []byte{0x80, 96, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7, 0xaa}
	buf := make([]byte, 1500)
	var seq uint16
	allocs := testing.AllocsPerRun(200, func() {
		seq++
		p[2], p[3] = byte(seq>>8), byte(seq)
		cli.Write(p)
		r.read(buf)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per stamped read", allocs)
	}
	if _, ok := r.table.arrival(7, seq); !ok {
		t.Fatal("the last packet's arrival was not noted")
	}
}

// The raw receive reports each datagram's sender as the net package
// would: on an IPv4 socket, and on a dual-stack one (an IPv4 sender as an
// IPv4-mapped address, an IPv6 one as itself). The ICE mux finds the
// connection by that address.
func TestRXReaderReportsTheSenderAsTheNetPackage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bind    *net.UDPAddr
		senders []string
	}{
		{"ipv4 socket", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, []string{"127.0.0.1"}},
		{"dual-stack socket", &net.UDPAddr{}, []string{"127.0.0.1", "::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := net.ListenUDP("udp", tc.bind)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			r := newRXReader(srv)
			if r == nil {
				t.Fatal("the kernel refused SO_TIMESTAMPNS on a UDP socket")
			}
			port := srv.LocalAddr().(*net.UDPAddr).Port
			buf := make([]byte, 1500)
			for _, from := range tc.senders {
				cli, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.ParseIP(from), Port: port})
				if err != nil {
					t.Fatalf("%s: %v", from, err)
				}
				defer cli.Close()
				p := []byte{0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xaa}
				_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
				cli.Write(p)
				n, raw, err := r.read(buf)
				if err != nil || n != len(p) {
					t.Fatalf("%s: raw read %d bytes, %v", from, n, err)
				}
				cli.Write(p)
				_, viaNet, err := srv.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatal(err)
				}
				if raw != viaNet {
					t.Errorf("%s: the raw read says %v, the net package %v", from, raw, viaNet)
				}
			}
		})
	}
}
