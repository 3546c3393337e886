package signaling

import (
	"fmt"
	"time"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// typingEvery is the fastest a participant's typing indicator is forwarded.
const typingEvery = time.Second

// handleSetPresence changes the sender's away/online state and custom
// status, and tells the room.
func (s *session) handleSetPresence(p *protocol.SetPresence) {
	m := s.member
	if p.State != protocol.PresenceOnline && p.State != protocol.PresenceAway {
		s.sendError(protocol.CodeBadMessage, fmt.Sprintf("state must be %q or %q", protocol.PresenceOnline, protocol.PresenceAway), protocol.TypeSetPresence)
		return
	}
	if err := checkText(p.Status, protocol.MaxStatusLen, true); err != nil {
		s.sendError(protocol.CodeLimit, "status: "+err.Error(), protocol.TypeSetPresence)
		return
	}
	r := m.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.presence.State == p.State && m.presence.Status == p.Status {
		return
	}
	m.presence.State, m.presence.Status = p.State, p.Status
	m.presence.LastSeen = 0
	if p.State == protocol.PresenceAway {
		m.presence.LastSeen = time.Now().UnixMilli()
	}
	r.eventLocked(&protocol.PresenceChanged{ParticipantID: m.id, Presence: m.presence}, "")
}

// handleTyping forwards a typing indicator to the others as an ephemeral
// message that expires by itself on the clients; the server keeps only the
// time of the last one.
func (s *session) handleTyping(t *protocol.Typing) {
	m := s.member
	if !m.grantsNow().PublishData {
		s.sendError(protocol.CodeForbidden, "typing needs the publishData grant", protocol.TypeTyping)
		return
	}
	r := m.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.Typing && time.Since(m.typingAt) < typingEvery {
		s.sendError(protocol.CodeRateLimited, fmt.Sprintf("typing at most once every %s", typingEvery), protocol.TypeTyping)
		return
	}
	m.typingAt = time.Now()
	msg := &protocol.Typing{Typing: t.Typing, ParticipantID: m.id}
	if t.Typing {
		msg.ExpiresIn = protocol.TypingTTLMillis
	}
	r.ephemeralLocked(msg, m.id)
}
