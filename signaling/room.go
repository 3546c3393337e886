package signaling

import (
	"errors"
	"sync"

	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

var errRoomClosed = errors.New("room closed")

// Room is one meeting: its participants and its media router.
type Room struct {
	srv   *Server
	name  string
	media *sfu.Room

	mu       sync.Mutex
	sessions map[string]*session // by participant id
	closed   bool
	meeting  meetingState // mutes and hands (meeting.go)
}

func newRoom(s *Server, name string) *Room {
	r := &Room{srv: s, name: name, sessions: map[string]*session{}}
	r.media = s.media.NewRoom(name, r)
	return r
}

func (r *Room) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// join adds a session and returns everyone else as they are now.
func (r *Room) join(s *session) (others []protocol.Participant, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errRoomClosed
	}
	for _, o := range r.sessions {
		others = append(others, r.participantLocked(o))
		o.send(&protocol.ParticipantJoined{Participant: s.participant()})
	}
	r.sessions[s.id] = s
	r.srv.metrics.participants.Inc()
	return others, nil
}

// withIdentity lists the sessions of one identity: a reloaded page or a
// restarted bot whose old connection has not timed out yet.
func (r *Room) withIdentity(identity string) []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*session
	for _, s := range r.sessions {
		if s.claims.Identity == identity {
			out = append(out, s)
		}
	}
	return out
}

// participantLocked describes a session with its current tracks.
func (r *Room) participantLocked(s *session) protocol.Participant {
	p := s.participant()
	for _, t := range r.media.Tracks(s.id) {
		p.Tracks = append(p.Tracks, trackOf(t))
	}
	return r.withMeetingLocked(p)
}

// leave removes a session; it reports whether the session was still there.
func (r *Room) leave(s *session) bool {
	r.mu.Lock()
	if r.sessions[s.id] != s {
		r.mu.Unlock()
		return false
	}
	delete(r.sessions, s.id)
	r.forgetParticipantLocked(s.id)
	r.srv.metrics.participants.Dec()
	r.broadcastLocked(&protocol.ParticipantLeft{ParticipantID: s.id}, "")
	r.mu.Unlock()
	r.media.RemovePeer(s.id)
	return true
}

func (r *Room) broadcastLocked(m any, except string) {
	for id, s := range r.sessions {
		if id != except {
			s.send(m)
		}
	}
}

// TrackPublished announces a new track to everyone, its publisher included
// (who learns the id the server gave it).
func (r *Room) TrackPublished(t sfu.TrackInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broadcastLocked(&protocol.TrackPublished{ParticipantID: t.PublisherID, Track: trackOf(t)}, "")
}

// TrackUnpublished announces an ended track.
func (r *Room) TrackUnpublished(t sfu.TrackInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetTrackLocked(t.ID)
	r.broadcastLocked(&protocol.TrackUnpublished{ParticipantID: t.PublisherID, TrackID: t.ID}, "")
}

func (r *Room) close() {
	r.mu.Lock()
	r.closed = true
	sessions := r.sessions
	r.sessions = map[string]*session{}
	r.srv.metrics.participants.Sub(float64(len(sessions)))
	r.mu.Unlock()
	for _, s := range sessions {
		s.end()
	}
	r.media.Close()
}

func trackOf(t sfu.TrackInfo) protocol.Track {
	return protocol.Track{ID: t.ID, Kind: t.Kind, Source: t.Source, Codec: t.Codec}
}
