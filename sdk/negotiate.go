package sdk

// The bot's side of SDP and ICE negotiation: one publisher offer at a time,
// answers to the server's subscriber offers, and candidates held until the
// description they belong to is set.

import (
	"context"
	"errors"
	"log/slog"
	"maps"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// sendCandidate sends on the current connection: a resume keeps the
// PeerConnections and replaces the WebSocket.
func (r *Room) sendCandidate(target string, c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	r.mu.Lock()
	conn := r.conn
	r.mu.Unlock()
	init := c.ToJSON()
	if err := conn.send(&protocol.Candidate{Target: target, Candidate: &protocol.ICECandidate{
		Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex, UsernameFragment: init.UsernameFragment,
	}}); err != nil {
		r.log.Debug("send candidate", "err", err)
	}
}

// negotiate sends a publisher offer now, or once the outstanding one is
// answered: never two at a time.
func (r *Room) negotiate() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.negotiateLocked()
}

func (r *Room) negotiateLocked() {
	if r.pubAwaiting {
		r.pubAgain = true
		return
	}
	r.offerLocked()
}

func (r *Room) offerLocked() {
	r.offerWithLocked(nil)
}

func (r *Room) offerWithLocked(opts *webrtc.OfferOptions) {
	restart := r.pubRestart
	if restart {
		opts = &webrtc.OfferOptions{ICERestart: true}
	}
	offer, err := r.pub.CreateOffer(opts)
	if err != nil {
		r.log.Warn("publisher offer", "err", err)
		return
	}
	if err := r.pub.SetLocalDescription(offer); err != nil {
		r.log.Warn("publisher offer", "err", err)
		return
	}
	r.pubRestart = false
	// The tracks added since the last offer travel in this one; if the
	// server refuses it, they are taken out (refusal.go).
	r.pubOut, r.pubNew, r.pubOutRestart = r.pubNew, nil, restart
	r.pubAwaiting = true
	if err := r.sendOffer(r.conn, offer.SDP); err != nil {
		r.log.Warn("publisher offer", "err", err)
	}
}

// sendOffer sends a publisher offer on conn with the sources of the
// tracks as they are now. Called with r.mu.
func (r *Room) sendOffer(conn *signalConn, sdp string) error {
	return conn.send(&protocol.Offer{Target: protocol.TargetPublisher, SDP: sdp, Sources: maps.Clone(r.sources)})
}

func (r *Room) handlePublisherAnswer(m *protocol.Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
		r.log.Warn("publisher answer", "err", err)
		return
	}
	r.pubAwaiting = false
	r.pubOut, r.pubOutRestart = nil, false
	for _, c := range r.pubPending {
		_ = r.pub.AddICECandidate(c)
	}
	r.pubPending = nil
	if r.pubAgain {
		r.pubAgain = false
		r.offerLocked()
	}
}

func (r *Room) handleSubscriberOffer(m *protocol.Offer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
		r.negotiationFailed("subscriber offer", err)
		return
	}
	for _, c := range r.subPending {
		_ = r.sub.AddICECandidate(c)
	}
	r.subPending = nil
	answer, err := r.sub.CreateAnswer(nil)
	if err != nil {
		r.negotiationFailed("subscriber answer", err)
		return
	}
	if err := r.sub.SetLocalDescription(answer); err != nil {
		r.negotiationFailed("subscriber answer", err)
		return
	}
	if err := r.conn.send(&protocol.Answer{Target: protocol.TargetSubscriber, SDP: answer.SDP}); err != nil {
		r.negotiationFailed("subscriber answer", err)
	}
}

// negotiationFailed logs a failed step of a negotiation: at debug when the
// PeerConnection had already closed (the server's offer crossed the room's
// close, or Pion closed it on the server's DTLS close), which is teardown,
// else as a warning.
func (r *Room) negotiationFailed(step string, err error) {
	level := slog.LevelWarn
	if errors.Is(err, webrtc.ErrConnectionClosed) {
		level = slog.LevelDebug
	}
	r.log.Log(context.Background(), level, step, "err", err)
}

func (r *Room) handleCandidate(m *protocol.Candidate) {
	if m.Candidate == nil {
		return
	}
	c := webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex, UsernameFragment: m.Candidate.UsernameFragment}
	r.mu.Lock()
	defer r.mu.Unlock()
	pc, pending := r.pub, &r.pubPending
	if m.Target == protocol.TargetSubscriber {
		pc, pending = r.sub, &r.subPending
	}
	if pc.RemoteDescription() == nil {
		*pending = append(*pending, c)
		return
	}
	if err := pc.AddICECandidate(c); err != nil {
		r.log.Debug("add candidate", "target", m.Target, "err", err)
	}
}
