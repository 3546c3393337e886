package signaling

import (
	"strconv"
	"time"

	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// meetingBurst bounds how many mute and raise-hand messages one participant
// may send per meetingWindow: each one is broadcast to the whole room, so
// a client toggling in a loop must not make everyone else's queues overflow.
const (
	meetingBurst  = 20
	meetingWindow = time.Second
)

// meetingState is what a room remembers of its meeting beyond media: muted
// tracks and raised hands. Guarded by Room.mu. Its size is bounded by the
// room: only a track's own publisher can mute it (and the entry goes with
// the track), and a hand goes with its participant.
type meetingState struct {
	muted map[string]bool // track id -> muted
	hands map[string]bool // participant id -> hand raised
}

// meetingBudget is one session's allowance of meeting messages.
type meetingBudget struct {
	windowStart time.Time
	used        int
}

// take reports whether one more message fits the budget. Only the
// session's read loop calls it.
func (b *meetingBudget) take(now time.Time) bool {
	if now.Sub(b.windowStart) >= meetingWindow {
		b.windowStart, b.used = now, 0
	}
	if b.used >= meetingBurst {
		return false
	}
	b.used++
	return true
}

// handleMeeting handles the meeting family of client messages; it reports
// whether msg was one.
func (s *session) handleMeeting(msg any) bool {
	t := protocol.TypeOf(msg)
	switch msg.(type) {
	case *protocol.Mute, *protocol.RaiseHand:
	default:
		return false
	}
	if !s.meetingBudget.take(time.Now()) {
		s.sendError(protocol.CodeBadMessage, "too many mute and hand messages; slow down", t)
		return true
	}
	switch m := msg.(type) {
	case *protocol.Mute:
		if err := s.member.room.setMuted(s.member, m.TrackID, m.Muted); err != "" {
			s.sendError(protocol.CodeBadMessage, err, t)
		}
	case *protocol.RaiseHand:
		s.member.room.setHand(s.member, m.Raised)
	}
	return true
}

// setMuted records a track's mute state and tells the room if it changed.
// The track may be named by the server's id or by the client's own (the
// msid track id it published under). It returns a reason when the track is
// not the sender's.
func (r *Room) setMuted(m *member, id string, muted bool) string {
	trackID := ""
	for _, t := range r.media.Tracks(m.id) {
		if t.ID == id || t.ClientID == id {
			trackID = t.ID
		}
	}
	if trackID == "" || id == "" {
		if len(id) > 64 {
			id = id[:64] + "…" // the error need not echo a huge id back
		}
		return "no published track of yours has id " + strconv.Quote(id)
	}
	if !muted && r.media.TrackPaused(trackID) {
		return "an admin muted this track; only an admin can unmute it"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[m.id] == m {
		r.recordMuteLocked(m.id, trackID, muted)
	}
	return ""
}

// recordMuteLocked records a track's mute state and, if it changed, tells
// the room; it reports whether it changed.
func (r *Room) recordMuteLocked(publisherID, trackID string, muted bool) bool {
	if r.meeting.muted[trackID] == muted {
		return false
	}
	if r.meeting.muted == nil {
		r.meeting.muted = map[string]bool{}
	}
	if muted {
		r.meeting.muted[trackID] = true
	} else {
		delete(r.meeting.muted, trackID)
	}
	r.eventLocked(&protocol.TrackMuted{ParticipantID: publisherID, TrackID: trackID, Muted: muted}, "")
	return true
}

// setHand records a hand and tells the room if it changed.
func (r *Room) setHand(m *member, raised bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[m.id] != m || r.meeting.hands[m.id] == raised {
		return
	}
	if r.meeting.hands == nil {
		r.meeting.hands = map[string]bool{}
	}
	if raised {
		r.meeting.hands[m.id] = true
	} else {
		delete(r.meeting.hands, m.id)
	}
	r.eventLocked(&protocol.HandRaised{ParticipantID: m.id, Raised: raised}, "")
}

// withMeetingLocked adds the meeting state to a participant's description.
func (r *Room) withMeetingLocked(p protocol.Participant) protocol.Participant {
	p.Hand = r.meeting.hands[p.ID]
	for i := range p.Tracks {
		p.Tracks[i].Muted = r.meeting.muted[p.Tracks[i].ID]
	}
	return p
}

// forgetTrackLocked drops an ended track's mute state.
func (r *Room) forgetTrackLocked(trackID string) { delete(r.meeting.muted, trackID) }

// forgetParticipantLocked drops a departed participant's hand.
func (r *Room) forgetParticipantLocked(id string) { delete(r.meeting.hands, id) }

// SpeakersChanged implements sfu.SpeakerEvents: the room hears who speaks.
func (r *Room) SpeakersChanged(speakers []sfu.Speaker) {
	m := &protocol.SpeakersChanged{Speakers: make([]protocol.Speaker, 0, len(speakers))}
	for _, s := range speakers {
		m.Speakers = append(m.Speakers, protocol.Speaker{ParticipantID: s.PeerID, Level: s.Level})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ephemeralLocked(m, "")
}

// QualityChanged implements sfu.QualityEvents: everyone sees everyone's
// connection quality (their own included).
func (r *Room) QualityChanged(updates []sfu.PeerQuality) {
	m := &protocol.ConnectionQuality{Updates: make([]protocol.Quality, 0, len(updates))}
	for _, u := range updates {
		m.Updates = append(m.Updates, protocol.Quality{
			ParticipantID: u.PeerID, Quality: u.Level,
			LossPercent: round1(u.LossPercent), JitterMs: round1(u.JitterMs), RTTMs: round1(u.RTTMs),
		})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rememberQualityLocked(m.Updates)
	r.ephemeralLocked(m, "")
}

func round1(v float64) float64 { return float64(int(v*10+0.5)) / 10 }

// TrackPacketsReceived is how many RTP packets of a published track the
// server has read from its publisher, for tests that check that a muted
// track stops sending. ok is false when no such track is in the room.
func (s *Server) TrackPacketsReceived(room, trackID string) (n uint64, ok bool) {
	s.mu.Lock()
	r := s.rooms[room]
	s.mu.Unlock()
	if r == nil {
		return 0, false
	}
	return r.media.PacketsReceived(trackID)
}

// SubscribedVideo is how the server sends one track to one subscriber:
// the simulcast layer it forwards, whether it is paused, and the render
// size (hidden, pinned) the subscriber last reported; ok is false when the
// subscriber does not receive it.
func (s *Server) SubscribedVideo(room, subscriberID, trackID string) (v sfu.SubscribedVideo, ok bool) {
	s.mu.Lock()
	r := s.rooms[room]
	s.mu.Unlock()
	if r == nil {
		return v, false
	}
	return r.media.SubscribedVideo(subscriberID, trackID)
}
