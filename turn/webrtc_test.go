package turn

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// A real Pion PeerConnection forced onto relay candidates (as a browser
// behind a UDP-blocking firewall would be) reaches a peer standing in for
// the SFU at 127.0.0.2 through the relay, using the ICE server list the
// relay hands out. This also checks pion/turn's v5 client (inside
// webrtc/v4) against this v4 server.
func TestWebRTCThroughRelay(t *testing.T) {
	t.Parallel()
	sfuConn := listenSFUMux(t)
	srv := startServer(t, []netip.AddrPort{sfuConn.LocalAddr().(*net.UDPAddr).AddrPort()}, nil)

	client, sfu := relayedPair(t, srv, sfuConn)
	echo(t, sfu)
	dc := openChannel(t, client, sfu)

	got := make(chan string, 1)
	dc.OnMessage(func(m webrtc.DataChannelMessage) { got <- string(m.Data) })
	if err := dc.SendText("hello through the relay"); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-got:
		if msg != "hello through the relay" {
			t.Fatalf("echo %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no echo through the relay")
	}

	pair, err := client.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("selected pair: %v %v", pair, err)
	}
	if pair.Local.Typ != webrtc.ICECandidateTypeRelay {
		t.Fatalf("client's selected candidate is %v, want relay", pair.Local.Typ)
	}
	if st := srv.Stats(); st.PacketsToPeer == 0 || st.PacketsFromPeer == 0 {
		t.Fatalf("relay carried nothing: %+v", st)
	}
}

// The same setup with the SFU's address missing from the policy never
// connects: the relay refuses the permission to 127.0.0.2.
func TestWebRTCRefusedPeer(t *testing.T) {
	t.Parallel()
	sfuConn := listenSFUMux(t)
	srv := startServer(t, nil, nil) // no SFU address: 127.0.0.2 is plain loopback

	client, sfu := relayedPair(t, srv, sfuConn)
	failed := make(chan struct{})
	client.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateFailed {
			close(failed)
		}
	})
	connected := make(chan struct{})
	sfu.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateConnected {
			close(connected)
		}
	})
	if _, err := client.CreateDataChannel("test", nil); err != nil {
		t.Fatal(err)
	}
	negotiate(t, client, sfu)
	select {
	case <-failed:
	case <-connected:
		t.Fatal("connected through a refused peer address")
	case <-time.After(20 * time.Second):
		t.Fatal("ICE neither failed nor connected")
	}
	waitFor(t, "the permission refusal to be counted", 5*time.Second, func() bool {
		r := srv.Stats().PermissionRefusals
		return r[peerNonGlobal]+r[peerSelf] > 0
	})
	if st := srv.Stats(); st.PacketsToPeer != 0 {
		t.Fatalf("relay forwarded %d datagrams to a refused peer", st.PacketsToPeer)
	}
}

// listenSFUMux is the SFU stand-in's single media socket on 127.0.0.2.
func listenSFUMux(t *testing.T) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// relayedPair makes the client PeerConnection (relay candidates only, ICE
// servers from srv) and the SFU stand-in (host candidate 127.0.0.2 only).
// Every packet either sends goes to 127.0.0.1 or 127.0.0.2.
func relayedPair(t *testing.T, srv *Server, sfuConn *net.UDPConn) (client, sfu *webrtc.PeerConnection) {
	t.Helper()
	var ices []webrtc.ICEServer
	for _, s := range srv.ICEServers("127.0.0.1", srv.Credentials("web-client")) {
		// Only the UDP URL: the TCP one would double the allocations for
		// nothing here.
		ices = append(ices, webrtc.ICEServer{URLs: s.URLs[:1], Username: s.Username, Credential: s.Credential})
	}

	quick := func(se *webrtc.SettingEngine) {
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetICETimeouts(2*time.Second, 4*time.Second, 500*time.Millisecond)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetIncludeLoopbackCandidate(true)
		se.LoggerFactory = quietPion{}
	}

	var cse webrtc.SettingEngine
	quick(&cse)
	cse.SetRelayAcceptanceMinWait(0)
	client, err := webrtc.NewAPI(webrtc.WithSettingEngine(cse)).NewPeerConnection(webrtc.Configuration{
		ICEServers:         ices,
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })

	var sse webrtc.SettingEngine
	quick(&sse)
	sse.SetICEUDPMux(webrtc.NewICEUDPMux(nil, sfuConn))
	sfu, err = webrtc.NewAPI(webrtc.WithSettingEngine(sse)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sfu.Close() })
	return client, sfu
}

// negotiate runs offer/answer with complete candidate gathering.
func negotiate(t *testing.T, offerer, answerer *webrtc.PeerConnection) {
	t.Helper()
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
}

// echo makes pc send back every data channel message it receives.
func echo(t *testing.T, pc *webrtc.PeerConnection) {
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) { _ = dc.Send(m.Data) })
	})
}

// openChannel negotiates client<->sfu with one data channel and waits
// until it is open.
func openChannel(t *testing.T, client, sfu *webrtc.PeerConnection) *webrtc.DataChannel {
	t.Helper()
	dc, err := client.CreateDataChannel("test", nil)
	if err != nil {
		t.Fatal(err)
	}
	open := make(chan struct{})
	dc.OnOpen(func() { close(open) })
	negotiate(t, client, sfu)
	select {
	case <-open:
	case <-time.After(15 * time.Second):
		t.Fatalf("data channel never opened (ICE %v)", client.ICEConnectionState())
	}
	return dc
}
