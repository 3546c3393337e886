package signaling

import (
	"errors"
	"fmt"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/datachannel"
	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

type webrtcCandidate = webrtc.ICECandidateInit

func (s *session) handleJoin(j *protocol.Join) {
	if j.Version != protocol.Version {
		s.endWith(protocol.CodeBadVersion, fmt.Sprintf("protocol version %d is not supported; this server speaks %d", j.Version, protocol.Version), protocol.TypeJoin, protocol.ClosePolicy)
		return
	}
	claims, err := s.srv.keys.Verify(j.Token)
	if err != nil {
		s.endWith(protocol.CodeBadToken, err.Error(), protocol.TypeJoin, protocol.ClosePolicy)
		return
	}
	if claims.Room == admin.AllRooms {
		s.endWith(protocol.CodeBadToken, `room "*" names a server admin token (docs/ADMIN.md); it cannot be joined`, protocol.TypeJoin, protocol.ClosePolicy)
		return
	}
	if s.srv.cfg.Router != nil {
		if !s.relayed {
			relayed, done := s.route(claims.Room, j)
			if relayed {
				return
			}
			if done != nil {
				defer done()
			}
		}
		defer s.srv.cfg.Router.Joined(claims.Room)
	}
	if s.srv.revoked.refuses(claims) {
		s.endWith(protocol.CodeForbidden, "this token was revoked: an admin removed its participant from the room", protocol.TypeJoin, protocol.ClosePolicy)
		return
	}
	if j.SessionID != "" {
		if m := s.srv.lookupSession(j.SessionID); m != nil && m.claims.Identity == claims.Identity && m.room.name == claims.Room {
			if s.resume(m, claims, j.LastSeq) {
				return
			}
		}
		// Unknown, expired or from another server life: join afresh.
	}
	s.freshJoin(claims)
}

func (s *session) joinedFor(m *member, claims *auth.Claims) *protocol.Joined {
	return &protocol.Joined{
		Room:        claims.Room,
		Participant: m.participant(),
		Grants:      claims.Grants,
		ICEServers:  s.srv.iceServers(s.host, claims.Identity),
		SessionID:   m.sessionID,
		Chat:        s.srv.chatHistory(claims.Room),
	}
}

// freshJoin makes a new member. An older member of the same identity in
// the room (a reloaded page that did not resume) is replaced.
func (s *session) freshJoin(claims *auth.Claims) {
	m := &member{
		srv:       s.srv,
		id:        newID("PA_"),
		sessionID: newID("SE_"),
		claims:    claims,
		presence:  protocol.Presence{State: protocol.PresenceOnline},
	}
	m.log = s.srv.log.With("participant", m.id, "identity", claims.Identity, "room", claims.Room)
	for attempt := 0; ; attempt++ {
		room := s.srv.room(claims.Room)
		for _, old := range room.withIdentity(claims.Identity) {
			if c := old.connection(); c != nil {
				c.endWith(protocol.CodeReplaced, "the same identity joined this room again", "", protocol.CloseNormal)
			}
			s.srv.removeMember(old)
		}
		m.room = room
		err := room.join(m, s, s.joinedFor(m, claims))
		if err == nil {
			break
		}
		if errors.Is(err, errRoomFull) {
			s.endWith(protocol.CodeRoomFull, fmt.Sprintf("room %q has its maximum of %d participants", claims.Room, s.srv.cfg.MaxParticipants), protocol.TypeJoin, protocol.ClosePolicy)
			return
		}
		if !errors.Is(err, errRoomClosed) || attempt > 3 {
			s.endWith(protocol.CodeInternal, err.Error(), protocol.TypeJoin, protocol.ClosePolicy)
			return
		}
	}
	s.srv.rememberSession(m)
	s.member = m
	s.log = m.log
	peer, err := m.room.media.AddPeer(m.id, m, s.peerOptions(m))
	if err != nil {
		s.endWith(protocol.CodeInternal, "media: "+err.Error(), protocol.TypeJoin, protocol.ClosePolicy)
		s.left = true // nothing to resume
		return
	}
	m.connMu.Lock()
	m.peer = peer
	m.connMu.Unlock()
	m.log.Info("joined", "name", claims.Name)
}

func (s *session) peerOptions(m *member) sfu.PeerOptions {
	claims := m.claims
	docPeer := datachannel.Participant{
		ID: m.id, Identity: claims.Identity, Name: claims.Name, Room: claims.Room,
		CanEdit: claims.Grants.EditDocs, IsAdmin: claims.Grants.RoomAdmin,
	}
	hub := s.srv.hub
	return sfu.PeerOptions{
		CanPublish:   claims.Grants.Publish,
		CanSubscribe: claims.Grants.Subscribe,
		OnDataChannel: func(dc *webrtc.DataChannel) {
			if !m.grantsNow().PublishData && dc.Label() == protocol.ChannelCursors {
				// Cursors are data the participant publishes to the
				// room (like chat): the grant is required. Documents
				// are governed by editDocs, and reading needs no grant.
				if c := m.connection(); c != nil {
					c.sendError(protocol.CodeForbidden, fmt.Sprintf("data channel %q refused: the token has no publishData grant", dc.Label()), "")
				}
				_ = dc.Close()
				return
			}
			hub.Attach(docPeer, dc)
		},
	}
}

// resume attaches this connection to a member that dropped. It reports
// false when the member is gone after all (then the caller joins afresh).
func (s *session) resume(m *member, claims *auth.Claims, lastSeq uint64) bool {
	joined := s.joinedFor(m, claims)
	old, err := m.room.resume(m, s, joined, lastSeq)
	if err != nil {
		return false
	}
	if old != nil {
		old.finish(closeFrame{protocol.CloseNormal, "resumed on another connection"})
	}
	s.member = m
	s.log = m.log
	if peer := m.mediaPeer(); peer != nil {
		peer.RestartICE()
	}
	m.log.Info("resumed", "lastSeq", lastSeq, "replayed", joined.Replayed)
	return true
}
