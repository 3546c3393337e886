package signaling

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// member is one participant in a room. It outlives its connections: when
// a connection drops without a leave, the member stays for the grace
// period (keeping its id, media and documents) and a new connection that
// presents its session id takes over.
type member struct {
	srv       *Server
	room      *Room
	id        string
	sessionID string
	claims    *auth.Claims
	log       *slog.Logger

	// Guarded by room.mu.
	presence protocol.Presence
	grace    *time.Timer // runs while no connection is attached
	typingAt time.Time   // last typing forwarded, for its rate limit

	grants atomic.Pointer[protocol.Grants] // set when an admin changed them (admin.go)

	// connMu guards conn for the media callbacks, which must not take the
	// room lock; writers of conn hold both (room.mu first).
	connMu sync.Mutex
	conn   *session  // nil while the member is reconnecting
	peer   *sfu.Peer // set once media is set up (a resume may read it at once)
}

func (m *member) mediaPeer() *sfu.Peer {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	return m.peer
}

func (m *member) participant() protocol.Participant {
	return protocol.Participant{ID: m.id, Identity: m.claims.Identity, Name: m.claims.Name, Tracks: []protocol.Track{}, Presence: m.presence}
}

func (m *member) connection() *session {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	return m.conn
}

func (m *member) setConn(c *session) {
	m.connMu.Lock()
	m.conn = c
	m.connMu.Unlock()
}

// SendDescription implements sfu.Signaler. While the member is
// reconnecting, descriptions are dropped: the resume restarts ICE and
// renegotiates both PeerConnections.
func (m *member) SendDescription(target string, sd webrtc.SessionDescription) {
	c := m.connection()
	if c == nil {
		return
	}
	if sd.Type == webrtc.SDPTypeOffer {
		c.send(&protocol.Offer{Target: target, SDP: sd.SDP})
		return
	}
	c.send(&protocol.Answer{Target: target, SDP: sd.SDP})
}

// SendCandidate implements sfu.Signaler.
func (m *member) SendCandidate(target string, ci *webrtc.ICECandidateInit) {
	c := m.connection()
	if c == nil {
		return
	}
	c.send(&protocol.Candidate{Target: target, Candidate: &protocol.ICECandidate{
		Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex, UsernameFragment: ci.UsernameFragment,
	}})
}

// disconnected runs when conn ended without a leave. The member is shown
// offline (reconnecting) at once and removed when the grace period ends
// without a resume.
func (r *Room) disconnected(m *member, conn *session, lastHeard time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[m.id] != m || m.conn != conn {
		return // resumed on another connection, or already gone
	}
	m.setConn(nil)
	m.presence.State = protocol.PresenceOffline
	m.presence.Reconnecting = true
	m.presence.LastSeen = lastHeard.UnixMilli()
	r.eventLocked(&protocol.PresenceChanged{ParticipantID: m.id, Presence: m.presence}, "")
	grace := r.srv.cfg.ResumeGrace
	m.grace = time.AfterFunc(grace, func() { r.srv.expire(m) })
}

// expire removes a member whose grace period ended.
func (s *Server) expire(m *member) {
	if s.ctx.Err() != nil {
		return // shutting down: the rooms are being closed
	}
	r := m.room
	r.mu.Lock()
	stillAway := r.members[m.id] == m && m.conn == nil
	r.mu.Unlock()
	if !stillAway {
		return
	}
	s.removeMember(m)
}

// removeMember takes a member out for good: its room, its media, its
// documents and its session id.
func (s *Server) removeMember(m *member) {
	if m.room.remove(m) {
		m.log.Info("left")
	} else {
		m.room.media.RemovePeer(m.id)
	}
	s.hub.Leave(m.id) // after the media peer (and its data channels) is gone
	s.forgetSession(m)
	s.dropRoomIfEmpty(m.room)
}
