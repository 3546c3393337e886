package sdk_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/turn"
)

// loopbackTURN runs the embedded relay on loopback only.
func loopbackTURN(c *node.Config) {
	c.TURN = &turn.Config{
		UDPAddr:     "127.0.0.1:0",
		TCPAddr:     "127.0.0.1:0",
		RelayBindIP: netip.MustParseAddr("127.0.0.1"),
	}
}

// selectedPairType is the local candidate type of a PeerConnection's
// selected ICE pair, or "" before one is selected.
func selectedPairType(pc *webrtc.PeerConnection) string {
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return ""
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return ""
	}
	return pair.Local.Typ.String()
}

// A bot that may only use relays (as behind a UDP-blocking firewall or a
// symmetric NAT) still sends and receives media, through the embedded TURN
// relay, with credentials handed out at join.
func TestRelayOnlyBotExchangesMedia(t *testing.T) {
	srv := startServerWith(t, loopbackTURN)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	relayedLog, normalLog := newFrameLog(), newFrameLog()
	relayed := join(t, ctx, srv, "behind-nat", "relay", sdk.Options{RelayOnly: true, OnTrack: relayedLog.onTrack})
	normal := join(t, ctx, srv, "office", "relay", sdk.Options{OnTrack: normalLog.onTrack})
	publishMedia(ctx, t, relayed)
	publishMedia(ctx, t, normal)

	waitFor(t, "media both ways (relayed "+describe(relayedLog)+", normal "+describe(normalLog)+")", 30*time.Second, func() bool {
		return relayedLog.count("video") >= 50 && normalLog.count("video") >= 50 &&
			relayedLog.count("audio") >= 50 && normalLog.count("audio") >= 50
	})
	relayedLog.checkInOrder(t, "video")
	normalLog.checkInOrder(t, "video")

	for name, pc := range map[string]*webrtc.PeerConnection{"publisher": relayed.PublisherPC(), "subscriber": relayed.SubscriberPC()} {
		if typ := selectedPairType(pc); typ != webrtc.ICECandidateTypeRelay.String() {
			t.Errorf("relay-only bot's %s PC uses a %q candidate, want relay", name, typ)
		}
	}
	if typ := selectedPairType(normal.PublisherPC()); typ != webrtc.ICECandidateTypeHost.String() {
		t.Errorf("normal bot's publisher PC uses %q, want host", typ)
	}
	// Data channels cross the relay too: the relayed bot writes a shared
	// document, the normal bot sees it, edits back, and the relayed bot
	// sees that, with each side's cursor reaching the other.
	info, err := relayed.Docs().Create(ctx, "notes", "")
	if err != nil {
		t.Fatal(err)
	}
	rdoc, err := relayed.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	ndoc, err := normal.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdoc.Insert(0, "from behind the NAT"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the normal bot to see the relayed edit", 20*time.Second, func() bool { return ndoc.Text() == "from behind the NAT" })
	if err := ndoc.Insert(0, "office: "); err != nil {
		t.Fatal(err)
	}
	ndoc.SetCursor(3, 3)
	waitFor(t, "the relayed bot to see the reply and the cursor", 20*time.Second, func() bool {
		_, cursor := rdoc.RemoteCursors()[normal.Self().ID]
		return rdoc.Text() == "office: from behind the NAT" && cursor
	})
	if typ := selectedPairType(relayed.PublisherPC()); typ != webrtc.ICECandidateTypeRelay.String() {
		t.Errorf("data channels of the relay-only bot use a %q pair, want relay", typ)
	}

	st := srv.TURN().Stats()
	if st.ActiveAllocations < 2 {
		t.Errorf("relay reports %d active allocations, want at least 2 (one per PC): %+v", st.ActiveAllocations, st)
	}
}
