package signaling

import (
	"errors"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

var (
	errRoomClosed = errors.New("room closed")
	errRoomFull   = errors.New("room is full")
)

// Room is one meeting: its members, their room events and its media
// router. Room events (joins, leaves, tracks, presence, chat) are numbered
// by seq and kept in a bounded log, shared by all members, so that a member
// that resumes gets exactly what it missed.
type Room struct {
	srv   *Server
	name  string
	media *sfu.Room

	mu      sync.Mutex
	members map[string]*member // by participant id
	closed  bool
	seq     uint64
	log     eventLog
	meeting meetingState // mutes and hands (meeting.go)

	quality map[string]protocol.Quality // last quality by participant, for the admin API (admin.go)
}

func newRoom(s *Server, name string) *Room {
	r := &Room{srv: s, name: name, members: map[string]*member{}}
	r.log.maxEvents, r.log.maxBytes = s.cfg.EventLogLen, s.cfg.EventLogBytes
	r.media = s.media.NewRoom(name, r)
	return r
}

func (r *Room) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// join adds a member and queues its joined on conn before anyone else can
// send it a room event: the first message a newcomer reads is its joined.
func (r *Room) join(m *member, conn *session, joined *protocol.Joined) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errRoomClosed
	}
	if len(r.members) >= r.srv.cfg.MaxParticipants {
		return errRoomFull
	}
	joined.Participants = make([]protocol.Participant, 0, len(r.members))
	for _, o := range r.members {
		joined.Participants = append(joined.Participants, r.participantLocked(o))
	}
	joined.Seq = r.seq
	m.setConn(conn)
	r.members[m.id] = m
	r.srv.metrics.participants.Inc()
	conn.send(joined)
	r.eventLocked(&protocol.ParticipantJoined{Participant: r.participantLocked(m)}, m.id)
	r.emitParticipantLocked(admin.ParticipantJoined, m)
	return nil
}

// resume attaches a new connection to a member in its grace period (or
// still holding a dying connection) and queues joined, then the missed
// events or, when the log no longer has them, a snapshot.
func (r *Room) resume(m *member, conn *session, joined *protocol.Joined, lastSeq uint64) (old *session, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.members[m.id] != m {
		return nil, errRoomClosed
	}
	old = m.conn
	m.setConn(conn)
	if m.grace != nil {
		m.grace.Stop()
		m.grace = nil
	}
	replay, ok := r.log.since(lastSeq, r.seq)
	joined.Resumed, joined.Replayed = true, ok
	joined.Participants = []protocol.Participant{}
	if ok {
		// The client keeps its view; the events after lastSeq follow.
		joined.Seq = lastSeq
		joined.Chat = []protocol.ChatMessage{}
	} else {
		// A snapshot: everyone as they are now, and the chat history the
		// caller has put in joined.
		joined.Seq = r.seq
		for _, o := range r.members {
			if o != m {
				joined.Participants = append(joined.Participants, r.participantLocked(o))
			}
		}
	}
	conn.send(joined)
	for _, e := range replay {
		if e.except != m.id {
			conn.sendRaw(e.data, false)
		}
	}
	if m.presence.Reconnecting || m.presence.State == protocol.PresenceOffline {
		m.presence.Reconnecting = false
		m.presence.State, m.presence.LastSeen = protocol.PresenceOnline, 0
		r.eventLocked(&protocol.PresenceChanged{ParticipantID: m.id, Presence: m.presence}, "")
	}
	return old, nil
}

// withIdentity lists the members of one identity: a reloaded page or a
// restarted bot that joined afresh instead of resuming.
func (r *Room) withIdentity(identity string) []*member {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*member
	for _, m := range r.members {
		if m.claims.Identity == identity {
			out = append(out, m)
		}
	}
	return out
}

// participantLocked describes a member with its current tracks.
func (r *Room) participantLocked(m *member) protocol.Participant {
	p := m.participant()
	p.Presence = m.presence
	p.Tracks = []protocol.Track{}
	for _, t := range r.media.Tracks(m.id) {
		p.Tracks = append(p.Tracks, trackOf(t))
	}
	return r.withMeetingLocked(p)
}

// remove takes a member out of the room for good; it reports whether the
// member was still there.
func (r *Room) remove(m *member) bool {
	r.mu.Lock()
	if r.members[m.id] != m {
		r.mu.Unlock()
		return false
	}
	r.emitParticipantLocked(admin.ParticipantLeft, m)
	delete(r.members, m.id)
	delete(r.quality, m.id)
	if m.grace != nil {
		m.grace.Stop()
		m.grace = nil
	}
	r.forgetParticipantLocked(m.id)
	r.srv.metrics.participants.Dec()
	r.eventLocked(&protocol.ParticipantLeft{ParticipantID: m.id}, "")
	r.mu.Unlock()
	r.media.RemovePeer(m.id)
	return true
}

// eventLocked numbers a room event, logs it for resumes and queues it for
// every connected member but except.
func (r *Room) eventLocked(msg any, except string) {
	r.seq++
	data, err := protocol.EncodeEvent(msg, r.seq)
	if err != nil {
		r.srv.log.Error("encode room event", "err", err)
		return
	}
	r.log.add(loggedEvent{seq: r.seq, data: data, except: except})
	for id, m := range r.members {
		if id != except && m.conn != nil {
			m.conn.sendRaw(data, false)
		}
	}
}

// ephemeralLocked sends a message that is neither numbered nor logged
// (typing): a slow client loses it first.
func (r *Room) ephemeralLocked(msg any, except string) {
	data, err := protocol.Encode(msg)
	if err != nil {
		r.srv.log.Error("encode room message", "err", err)
		return
	}
	typ := protocol.TypeOf(msg)
	for id, m := range r.members {
		if id != except && m.conn != nil {
			m.conn.sendEphemeral(data, typ)
		}
	}
}

// TrackPublished announces a new track to everyone, its publisher included
// (who learns the id the server gave it).
func (r *Room) TrackPublished(t sfu.TrackInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.eventLocked(&protocol.TrackPublished{ParticipantID: t.PublisherID, Track: trackOf(t)}, "")
	r.emitTrack(admin.TrackPublished, t)
}

// TrackUnpublished announces an ended track.
func (r *Room) TrackUnpublished(t sfu.TrackInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetTrackLocked(t.ID)
	r.eventLocked(&protocol.TrackUnpublished{ParticipantID: t.PublisherID, TrackID: t.ID}, "")
	r.emitTrack(admin.TrackUnpublished, t)
}

// restart tells every connected member to reconnect (the server is going
// down) and forgets them all; resumable sessions stay valid if the server
// keeps running, which it does not.
func (r *Room) restart(reason string) []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	var conns []*session
	for _, m := range r.members {
		if m.conn != nil {
			conns = append(conns, m.conn)
			m.conn.finish(closeFrame{protocol.CloseServiceRestart, reason})
		}
	}
	return conns
}

func (r *Room) close() {
	r.mu.Lock()
	r.closed = true
	members := r.members
	r.members = map[string]*member{}
	r.srv.metrics.participants.Sub(float64(len(members)))
	for _, m := range members {
		if m.grace != nil {
			m.grace.Stop()
			m.grace = nil
		}
	}
	r.mu.Unlock()
	for _, m := range members {
		if c := m.connection(); c != nil {
			c.end()
		}
		r.srv.forgetSession(m)
	}
	r.media.Close()
}

func trackOf(t sfu.TrackInfo) protocol.Track {
	return protocol.Track{ID: t.ID, Kind: t.Kind, Source: t.Source, Codec: t.Codec}
}

// loggedEvent is one numbered room event, encoded once for everyone.
type loggedEvent struct {
	seq    uint64
	data   []byte
	except string // the participant it was not sent to
}

// eventLog keeps the most recent room events, bounded by count and bytes.
type eventLog struct {
	events    []loggedEvent
	bytes     int
	maxEvents int
	maxBytes  int
}

func (l *eventLog) add(e loggedEvent) {
	l.events = append(l.events, e)
	l.bytes += len(e.data)
	drop := 0
	for len(l.events)-drop > l.maxEvents || (l.bytes > l.maxBytes && len(l.events)-drop > 1) {
		l.bytes -= len(l.events[drop].data)
		drop++
	}
	if drop > 0 {
		clear(l.events[:drop])
		l.events = append(l.events[:0], l.events[drop:]...)
	}
}

// since returns the events after seq, or false when some are gone.
func (l *eventLog) since(seq, current uint64) ([]loggedEvent, bool) {
	if seq > current {
		return nil, false
	}
	if seq == current {
		return nil, true
	}
	if len(l.events) == 0 || l.events[0].seq > seq+1 {
		return nil, false
	}
	i := int(seq + 1 - l.events[0].seq)
	return append([]loggedEvent(nil), l.events[i:]...), true
}

// now is the server's clock in protocol units (Unix ms).
func now() int64 { return time.Now().UnixMilli() }
