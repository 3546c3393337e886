package signaling

import (
	"errors"
	"time"

	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// renderBurst bounds render-size reports per participant per second: a
// page reports on every resize, and each report reallocates its media.
const renderBurst = 50

// handleAdaptive handles the adaptive-quality family of client messages;
// it reports whether msg was one.
func (s *session) handleAdaptive(msg any) bool {
	m, ok := msg.(*protocol.RenderSize)
	if !ok {
		return false
	}
	t := protocol.TypeOf(msg)
	now := time.Now()
	if now.Sub(s.renderWindow) >= time.Second {
		s.renderWindow, s.renderUsed = now, 0
	}
	if s.renderUsed >= renderBurst {
		s.sendError(protocol.CodeBadMessage, "too many render size reports; slow down", t)
		return true
	}
	s.renderUsed++
	peer := s.member.mediaPeer()
	if peer == nil {
		s.sendError(protocol.CodeInternal, "media is not ready for this participant", t)
		return true
	}
	switch err := peer.SetRenderSize(m.TrackID, m.Width, m.Height, m.Hidden, m.Pinned); {
	case errors.Is(err, sfu.ErrNoTrack):
		s.sendError(protocol.CodeBadMessage, "you receive no video track with that id", t)
	case err != nil:
		s.sendError(protocol.CodeBadMessage, err.Error(), t)
	}
	return true
}

// VideoPaused implements sfu.AdaptiveEvents: the subscriber learns that
// one of its videos stopped or restarted, and why.
func (r *Room) VideoPaused(subscriberID, trackID string, paused bool, reason string) {
	r.sendTo(subscriberID, &protocol.VideoPaused{TrackID: trackID, Paused: paused, Reason: reason})
}

// PublishLayers implements sfu.AdaptiveEvents (dynacast): the publisher
// learns which of a track's simulcast layers anyone receives.
func (r *Room) PublishLayers(t sfu.TrackInfo, rids []string, active []bool) {
	m := &protocol.PublishLayers{TrackID: t.ID, ClientTrackID: t.ClientID}
	for i, rid := range rids {
		m.Layers = append(m.Layers, protocol.Layer{RID: rid, Active: active[i]})
	}
	r.sendTo(t.PublisherID, m)
}

// sendTo sends one participant a message that is not a room event. It is
// not ephemeral: a lost pause notice would leave a tile frozen unexplained.
func (r *Room) sendTo(id string, msg any) {
	data, err := protocol.Encode(msg)
	if err != nil {
		r.srv.log.Error("encode message", "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.members[id]; m != nil && m.conn != nil {
		m.conn.sendRaw(data, false)
	}
}
