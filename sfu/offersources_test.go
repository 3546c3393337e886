package sfu

import (
	"maps"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

type nopSignaler struct{}

func (nopSignaler) SendDescription(string, webrtc.SessionDescription) {}
func (nopSignaler) SendCandidate(string, *webrtc.ICECandidateInit)    {}

// An offer Pion refuses leaves the sources of the last accepted one: the
// refused offer's tracks never existed.
func TestRefusedOfferKeepsTheSources(t *testing.T) {
	e, err := NewEngine(Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r := e.NewRoom("sources", nil)
	p, err := r.AddPeer("PA_a", nopSignaler{}, PeerOptions{CanPublish: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.RemovePeer("PA_a")
	client, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "PA_a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	offer, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.HandleOffer(offer.SDP, map[string]string{"mic": "microphone"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"mic": "microphone"}
	if !maps.Equal(p.sources, want) {
		t.Fatalf("sources after the first offer: %v, want %v", p.sources, want)
	}
	// The same offer with its track renamed and no ICE credentials: it
	// parses, and Pion refuses it.
	var kept []string
	for _, l := range strings.Split(offer.SDP, "\r\n") {
		if !strings.HasPrefix(l, "a=ice-ufrag:") && !strings.HasPrefix(l, "a=ice-pwd:") {
			kept = append(kept, strings.ReplaceAll(l, " mic", " screen-1"))
		}
	}
	err = p.HandleOffer(strings.Join(kept, "\r\n"), map[string]string{"mic": "microphone", "screen-1": "screen"})
	if err == nil {
		t.Fatal("an offer without ICE credentials was accepted")
	}
	if !maps.Equal(p.sources, want) {
		t.Errorf("sources after a refused offer: %v, want %v (the accepted offer's)", p.sources, want)
	}
}
