package signaling

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// This file is the room side of the admin API (package admin): the Server
// implements admin.Backend, and rooms report their events to the
// node's event bus (the SSE stream and the webhooks).

var _ admin.Backend = (*Server)(nil)

// Rooms lists the rooms with their participant counts, by name.
func (s *Server) Rooms() []admin.Room {
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	out := make([]admin.Room, 0, len(rooms))
	for _, r := range rooms {
		out = append(out, admin.Room{Name: r.name, NumParticipants: r.size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Room describes one room with its participants, their tracks and quality.
func (s *Server) Room(name string) (admin.Room, bool) {
	r := s.existingRoom(name)
	if r == nil {
		return admin.Room{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := admin.Room{Name: name, NumParticipants: len(r.members), Participants: make([]admin.Participant, 0, len(r.members))}
	for _, m := range r.members {
		out.Participants = append(out.Participants, r.adminParticipantLocked(m))
	}
	sort.Slice(out.Participants, func(i, j int) bool { return out.Participants[i].Identity < out.Participants[j].Identity })
	return out, true
}

func (s *Server) existingRoom(name string) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[name]
}

// MuteTrack stops (or resumes) forwarding a track to every subscriber and
// tells the room, as a publisher's own mute does.
func (s *Server) MuteTrack(room, trackID string, muted bool) error {
	r := s.existingRoom(room)
	if r == nil {
		return fmt.Errorf("%w: no room %q", admin.ErrNotFound, room)
	}
	if !r.media.PauseTrack(trackID, muted) {
		return fmt.Errorf("%w: no track %q in room %q", admin.ErrNotFound, trackID, room)
	}
	publisher := ""
	for _, t := range r.media.AllTracks() {
		if t.ID == trackID {
			publisher = t.PublisherID
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recordMuteLocked(publisher, trackID, muted) {
		r.srv.events.Publish(admin.Event{Type: admin.TrackMuted, Room: r.name, Participant: &admin.Participant{ID: publisher}, Track: &admin.Track{ID: trackID, Muted: muted}})
	}
	return nil
}

// RemoveParticipant ends a participant's session with "removed", takes it
// out of the room for everyone and refuses its token (and any older token
// of the same identity for the room) from now on.
func (s *Server) RemoveParticipant(room, id string) error {
	m, err := s.findMember(room, id)
	if err != nil {
		return err
	}
	s.revoked.add(m.claims)
	if c := m.connection(); c != nil {
		c.endWith(protocol.CodeRemoved, "an admin removed you from the room", "", protocol.ClosePolicy)
	}
	s.removeMember(m)
	m.log.Info("removed by an admin")
	return nil
}

// CloseRoom ends every participant's session with "room_closed" and
// forgets the room. Tokens stay valid: a later join opens a new room.
func (s *Server) CloseRoom(name string) error {
	r := s.existingRoom(name)
	if r == nil {
		return fmt.Errorf("%w: no room %q", admin.ErrNotFound, name)
	}
	n := s.endRoom(r, protocol.CodeRoomClosed, "an admin closed the room", protocol.ClosePolicy)
	s.log.Info("room closed by an admin", "room", name, "participants", n)
	return nil
}

// endRoom ends every member's session in r with an error code, a reason
// and a close code, removes them, and returns how many there were.
func (s *Server) endRoom(r *Room, code, reason string, closeCode int) int {
	r.mu.Lock()
	members := make([]*member, 0, len(r.members))
	for _, m := range r.members {
		members = append(members, m)
	}
	r.mu.Unlock()
	for _, m := range members {
		if c := m.connection(); c != nil {
			c.endWith(code, reason, "", closeCode)
		}
		s.removeMember(m)
	}
	return len(members)
}

// UpdateGrants changes a participant's grants. Chat, typing, status and
// cursors follow the new grants at once; taking publish away also mutes
// the participant's tracks for everyone. Subscribing and document editing
// keep the grants of the join until the participant joins again.
func (s *Server) UpdateGrants(room, id string, g protocol.Grants) (admin.Participant, error) {
	m, err := s.findMember(room, id)
	if err != nil {
		return admin.Participant{}, err
	}
	m.grants.Store(&g)
	if !g.Publish {
		for _, t := range m.room.media.Tracks(m.id) {
			_ = s.MuteTrack(room, t.ID, true)
		}
	}
	r := m.room
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.adminParticipantLocked(m), nil
}

// findMember finds a participant by id, or else by identity.
func (s *Server) findMember(room, id string) (*member, error) {
	r := s.existingRoom(room)
	if r == nil {
		return nil, fmt.Errorf("%w: no room %q", admin.ErrNotFound, room)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.members[id]; m != nil {
		return m, nil
	}
	for _, m := range r.members {
		if m.claims.Identity == id {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w: no participant %q in room %q", admin.ErrNotFound, id, room)
}

// grantsNow are the member's grants: its token's, or an admin's update.
func (m *member) grantsNow() protocol.Grants {
	if g := m.grants.Load(); g != nil {
		return *g
	}
	return m.claims.Grants
}

// adminParticipantLocked describes a member for the API and the events.
func (r *Room) adminParticipantLocked(m *member) admin.Participant {
	p := admin.Participant{ID: m.id, Identity: m.claims.Identity, Name: m.claims.Name, Grants: m.grantsNow(), Presence: m.presence.State, Tracks: []admin.Track{}}
	for _, t := range r.media.Tracks(m.id) {
		p.Tracks = append(p.Tracks, adminTrack(t, r.meeting.muted[t.ID]))
	}
	if q, ok := r.quality[m.id]; ok {
		p.Quality = &admin.Quality{Level: q.Quality, LossPercent: q.LossPercent, JitterMs: q.JitterMs, RTTMs: q.RTTMs}
	}
	return p
}

func adminTrack(t sfu.TrackInfo, muted bool) admin.Track {
	return admin.Track{ID: t.ID, Kind: t.Kind, Source: t.Source, Codec: t.Codec, Muted: muted}
}

// rememberQualityLocked keeps each participant's last quality for the API.
func (r *Room) rememberQualityLocked(updates []protocol.Quality) {
	if r.quality == nil {
		r.quality = map[string]protocol.Quality{}
	}
	for _, q := range updates {
		if r.members[q.ParticipantID] != nil { // bounded by the members
			r.quality[q.ParticipantID] = q
		}
	}
}

// emitParticipantLocked reports a join or a leave to the event bus.
func (r *Room) emitParticipantLocked(typ string, m *member) {
	p := r.adminParticipantLocked(m)
	r.srv.events.Publish(admin.Event{Type: typ, Room: r.name, Participant: &p})
}

// emitTrack reports a published or ended track to the event bus.
func (r *Room) emitTrack(typ string, t sfu.TrackInfo) {
	tr := adminTrack(t, false)
	r.srv.events.Publish(admin.Event{Type: typ, Room: r.name, Participant: &admin.Participant{ID: t.PublisherID}, Track: &tr})
}

// revocations are the tokens of removed participants: a token of that
// identity for that room issued at or before the removal's token is
// refused until it expires. Bounded: expired entries are pruned, and past
// maxRevocations the one expiring first is forgotten.
type revocations struct {
	mu      sync.Mutex
	entries map[revokedKey]revocation
}

type revokedKey struct{ room, identity string }

type revocation struct {
	issuedAt time.Time // tokens issued at or before this are refused
	expires  time.Time // after this, every such token has expired anyway
}

const maxRevocations = 10000

func (v *revocations) add(c *auth.Claims) {
	if c.IssuedAt == nil || c.ExpiresAt == nil {
		return // Mint always sets both; Verify requires the expiry
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.entries == nil {
		v.entries = map[revokedKey]revocation{}
	}
	now := time.Now()
	for k, e := range v.entries {
		if now.After(e.expires) {
			delete(v.entries, k)
		}
	}
	k := revokedKey{c.Room, c.Identity}
	e := v.entries[k]
	if c.IssuedAt.After(e.issuedAt) {
		e.issuedAt = c.IssuedAt.Time
	}
	if c.ExpiresAt.After(e.expires) {
		e.expires = c.ExpiresAt.Time
	}
	if _, ok := v.entries[k]; !ok && len(v.entries) >= maxRevocations {
		var first revokedKey
		var at time.Time
		for k2, e2 := range v.entries {
			if at.IsZero() || e2.expires.Before(at) {
				first, at = k2, e2.expires
			}
		}
		delete(v.entries, first)
	}
	v.entries[k] = e
}

// refuses reports whether a token was revoked.
func (v *revocations) refuses(c *auth.Claims) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.entries[revokedKey{c.Room, c.Identity}]
	return ok && c.IssuedAt != nil && !c.IssuedAt.After(e.issuedAt)
}

func (v *revocations) len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.entries)
}

// statsEvery is how often participants_quality events go to open streams.
const statsEvery = time.Second

// runStats publishes each room's per-participant bitrates, tracks and
// quality to the event streams while any is open (the dashboard's live
// figures). It runs until the server's context ends; Start's wg waits
// for it.
func (s *Server) runStats() {
	defer s.wg.Done()
	tick := time.NewTicker(statsEvery)
	defer tick.Stop()
	type key struct{ room, id string }
	type counts struct{ sent, recv uint64 } // published and forwarded-to bytes
	prev := map[key]counts{}                // at the last tick; only present participants are kept
	last := time.Now()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		secs := now.Sub(last).Seconds()
		last = now
		if !s.events.Watched() {
			clear(prev)
			continue
		}
		next := map[key]counts{}
		s.mu.Lock()
		rooms := make([]*Room, 0, len(s.rooms))
		for _, r := range s.rooms {
			rooms = append(rooms, r)
		}
		s.mu.Unlock()
		for _, r := range rooms {
			sent, recv := r.media.PublishedBytes(), r.media.ForwardedBytes()
			r.mu.Lock()
			stats := make([]admin.Stats, 0, len(r.members))
			for id := range r.members {
				k := key{r.name, id}
				cur := counts{sent[id], recv[id]}
				next[k] = cur
				st := admin.Stats{ParticipantID: id, Quality: r.quality[id].Quality}
				if p, ok := prev[k]; ok && secs > 0 {
					st.SendBitrate = bitrate(p.sent, cur.sent, secs)
					st.RecvBitrate = bitrate(p.recv, cur.recv, secs)
				}
				for _, t := range r.media.Tracks(id) {
					st.Layers = append(st.Layers, t.Kind+" "+t.Codec)
				}
				stats = append(stats, st)
			}
			r.mu.Unlock()
			s.events.Publish(admin.Event{Type: admin.ParticipantsQuality, Room: r.name, Stats: stats})
		}
		prev = next
	}
}

// bitrate is the rate, in bits/s, of a byte counter that went from before
// to after in secs; 0 when it went down (an unpublished track left the
// sum).
func bitrate(before, after uint64, secs float64) float64 {
	if after < before {
		return 0
	}
	return float64(after-before) * 8 / secs
}
