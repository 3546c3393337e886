package session

import (
	"time"
)

// Presence expiry: a session that sends nothing (no heartbeat, request,
// op or cursor) for PresenceExpiry drops out of the documents' presence
// and its cursors are gone for the others, although its channels stay
// open (a client that froze or lost its network without closing). It is
// back as soon as it sends anything.

// touch records activity; a session that had expired is present again.
func (s *Session) touch() {
	s.seen.Store(time.Now().UnixNano())
	if s.expired.Load() && s.expired.CompareAndSwap(true, false) {
		for doc, room := range s.openDocs() {
			s.srv.broadcastPresence(room, doc)
		}
	}
}

// openDocs lists the documents the session has open, doc -> room.
func (s *Session) openDocs() map[string]string {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	out := make(map[string]string, len(s.docs))
	for id, od := range s.docs {
		out[id] = od.room
	}
	return out
}

// expireLoop takes silent sessions out of presence; owned by the server.
func (srv *Server) expireLoop() {
	defer srv.wg.Done()
	every := max(srv.cfg.PresenceExpiry/10, 10*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-srv.ctx.Done():
			return
		case now := <-tick.C:
			srv.expire(now)
		}
	}
}

func (srv *Server) expire(now time.Time) {
	limit := now.Add(-srv.cfg.PresenceExpiry).UnixNano()
	var gone []*Session
	srv.mu.Lock()
	for _, s := range srv.sessions {
		if s.seen.Load() < limit && !s.expired.Load() {
			s.expired.Store(true)
			gone = append(gone, s)
		}
	}
	srv.mu.Unlock()
	for _, s := range gone {
		s.log.Info("document presence expired: nothing heard", "after", srv.cfg.PresenceExpiry)
		docs := s.openDocs()
		for doc, room := range docs {
			s.cur.forget(doc)
			srv.broadcastPresence(room, doc)
			s.broadcastCursorGone(room, doc)
		}
	}
}
