package sfu

import (
	"log/slog"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// close's unblockReads ends a read of a published track that nothing else
// would end: here the publisher's PC stays open and simply stops sending,
// as a stream Pion left open after close would look to its reader.
func TestUnblockReadsEndsABlockedTrackRead(t *testing.T) {
	pub, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	srv, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "v", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.AddTrack(local); err != nil {
		t.Fatal(err)
	}
	got := make(chan trackRead, 1)
	srv.OnTrack(func(r *webrtc.TrackRemote, rc *webrtc.RTPReceiver) { got <- trackRead{r, rc} })
	connectPair(t, pub, srv)

	// Send until the server side has the track, then stop for good.
	var tr trackRead
	for seq := uint16(1); tr.remote == nil; seq++ {
		if err := local.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: []byte{0x10, 0, 0, 0}}); err != nil {
			t.Fatal(err)
		}
		select {
		case tr = <-got:
		case <-time.After(20 * time.Millisecond):
		}
		if seq > 1000 {
			t.Fatal("the server side never got the track")
		}
	}
	ended := make(chan error, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.remote.Read(buf); err != nil {
				ended <- err
				return
			}
		}
	}()
	p := &Peer{log: slog.Default(), reads: []trackRead{tr}}
	p.unblockReads()
	select {
	case err := <-ended:
		t.Logf("the read ended with %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the track's read still blocks after unblockReads")
	}
}

// connectPair connects two in-process PeerConnections over loopback,
// offer from a, with every candidate in the descriptions.
func connectPair(t *testing.T, a, b *webrtc.PeerConnection) {
	t.Helper()
	offer, err := a.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(a)
	if err := a.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := b.SetRemoteDescription(*a.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done = webrtc.GatheringCompletePromise(b)
	if err := b.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := a.SetRemoteDescription(*b.LocalDescription()); err != nil {
		t.Fatal(err)
	}
}
