package sdk

// What happens when the server refuses the bot's publisher offer (an error
// with ref "offer": a limit hit, an SDP it cannot apply, a server fault).
// No answer will come for that offer, so the SDK rolls it back, takes out
// the tracks it carried for the first time (their writes then return the
// refusal) and sends whatever was queued meanwhile: the room stays able to
// publish, as docs/PROTOCOL.md asks of a client.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// refusal is set on a track when the server refused the offer that
// carried it.
type refusal struct{ err atomic.Pointer[error] }

// Err is why the server refused this track, or nil. A refused track is
// taken off the publisher connection (its writes return this error and
// send nothing); the *protocol.Error it wraps names the server's reason.
// Publish a new track to try again.
func (f *refusal) Err() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *refusal) refuse(err error) { f.err.CompareAndSwap(nil, &err) }

// offered is a track added to the publisher PeerConnection and not yet in
// an answered offer.
type offered struct {
	track  published
	sender *webrtc.RTPSender
}

// offerRefused makes the publisher PeerConnection stable again after the
// server refused its offer.
func (r *Room) offerRefused(e *protocol.Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.pubAwaiting {
		return // nothing outstanding (a refusal already handled, or a reconnect since)
	}
	if e.Code == protocol.CodeRateLimited {
		r.offerDropped() // only dropped: it is sent again as it is (offerretry.go)
		return
	}
	if r.pub.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		if err := settleRefused(r.pub); err != nil {
			r.negotiationFailed("publisher offer refused", err)
		}
	}
	r.pubAwaiting = false
	if r.pubOutRestart {
		// Pion restarted the local ICE agent when it made the offer: the
		// server must get new credentials soon, or the connection fails.
		// Offer again now if that offer will differ (tracks taken out);
		// an unchanged one would only be refused again.
		r.pubRestart = true
		r.pubAgain = r.pubAgain || len(r.pubOut) > 0
	}
	var ids []string
	for _, o := range r.pubOut {
		id := o.track.trackLocal().ID()
		ids = append(ids, id)
		o.track.refuse(fmt.Errorf("publish %s (source %q): the server refused the offer that carried it: %w", id, r.sources[id], e))
		// The transceiver stays (Pion cannot remove one) and is reused by
		// the next track of its kind.
		if err := r.pub.RemoveTrack(o.sender); err != nil {
			r.negotiationFailed("remove refused track", err)
		}
		r.tracks = slices.DeleteFunc(r.tracks, func(t published) bool { return t == o.track })
		delete(r.sources, id)
	}
	if len(ids) > 0 {
		r.log.Warn("publisher offer refused; its new tracks are taken out", "tracks", ids, "code", e.Code)
	}
	r.pubOut, r.pubOutRestart = nil, false
	if r.pubAgain {
		r.pubAgain = false
		r.offerLocked()
	}
}

// settleRefused brings the publisher PeerConnection from have-local-offer
// back to stable without the server. A browser rolls the offer back; Pion
// cannot (it refuses have-local-offer -> SetLocal(rollback) -> stable), so
// the refused offer is answered here with what the server last answered,
// every m-section the server has not seen rejected (port 0). Nothing
// changes for what the server already has (same ICE credentials, DTLS
// fingerprint and SCTP port); the rejected transceivers stay, unused,
// until a later track of their kind takes them over.
func settleRefused(pc *webrtc.PeerConnection) error {
	last := pc.CurrentRemoteDescription()
	if last == nil {
		return errors.New("the first publisher offer was refused: no earlier answer to return to")
	}
	// Parsed apart: Unmarshal would write into Pion's own descriptions,
	// which its goroutines read.
	var prev, offer sdp.SessionDescription
	if err := prev.UnmarshalString(last.SDP); err != nil {
		return fmt.Errorf("last publisher answer: %w", err)
	}
	if err := offer.UnmarshalString(pc.PendingLocalDescription().SDP); err != nil {
		return fmt.Errorf("refused publisher offer: %w", err)
	}
	known := map[string]*sdp.MediaDescription{}
	for _, m := range prev.MediaDescriptions {
		if mid, ok := m.Attribute(sdp.AttrKeyMID); ok {
			known[mid] = m
		}
	}
	answer := prev
	answer.MediaDescriptions = make([]*sdp.MediaDescription, 0, len(offer.MediaDescriptions))
	for _, m := range offer.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		if a, ok := known[mid]; ok {
			answer.MediaDescriptions = append(answer.MediaDescriptions, a)
			continue
		}
		answer.MediaDescriptions = append(answer.MediaDescriptions, rejected(m, mid))
	}
	raw, err := answer.Marshal()
	if err != nil {
		return fmt.Errorf("settle refused offer: %w", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(raw)}); err != nil {
		return fmt.Errorf("settle refused offer: %w", err)
	}
	return nil
}

// rejected answers an offered m-section with port 0: its first codec (Pion
// wants every payload type described), no direction but inactive.
func rejected(m *sdp.MediaDescription, mid string) *sdp.MediaDescription {
	formats := m.MediaName.Formats[:min(1, len(m.MediaName.Formats))]
	attrs := []sdp.Attribute{{Key: sdp.AttrKeyMID, Value: mid}, {Key: sdp.AttrKeyInactive}}
	for _, a := range m.Attributes {
		if len(formats) == 1 && (a.Key == "rtpmap" || a.Key == "fmtp") && strings.HasPrefix(a.Value, formats[0]+" ") {
			attrs = append(attrs, a)
		}
	}
	return &sdp.MediaDescription{
		MediaName:             sdp.MediaName{Media: m.MediaName.Media, Port: sdp.RangedPort{Value: 0}, Protos: m.MediaName.Protos, Formats: formats},
		ConnectionInformation: m.ConnectionInformation,
		Attributes:            attrs,
	}
}
