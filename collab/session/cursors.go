package session

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// cursorBox coalesces a session's cursors: at most one per document per
// interval is passed on, the newest.
type cursorBox struct {
	mu    sync.Mutex
	docs  map[string]*cursorState
	force bool // pass pending cursors on now (FlushCursors)
	kick  chan struct{}

	// sendMu orders what the others hear about this session's cursors:
	// a forward checks that the document is still open and takes its seq
	// under it, a removal takes the next seq under it, so no cursor
	// decided after a removal goes out, and one decided before carries a
	// lower seq (receivers drop it even if it arrives after the removal).
	// Seqs come from the server's one counter (Server.cursorSeq), so a
	// later session of the same participant (its channels opened again)
	// goes on above the removals of the earlier one.
	sendMu sync.Mutex
}

// cursorState is one document's cursor of one session.
type cursorState struct {
	pending *protocol.Cursor // newest not yet passed on
	last    time.Time        // when one was last passed on
}

func newCursorBox() cursorBox {
	return cursorBox{docs: map[string]*cursorState{}, kick: make(chan struct{}, 1)}
}

func (b *cursorBox) forget(doc string) {
	b.mu.Lock()
	delete(b.docs, doc)
	b.mu.Unlock()
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Cursor takes a cursor update from the client (on either channel).
func (s *Session) Cursor(data []byte) {
	s.touch()
	var m struct {
		Type   string `json:"type"`
		Doc    string `json:"doc"`
		Rev    *int64 `json:"rev"`
		Anchor *int   `json:"anchor"`
		Head   *int   `json:"head"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		s.fail(&docErr{code: protocol.DocErrBadMessage, msg: "not a JSON message object", err: err}, "", "", "")
		return
	}
	switch {
	case m.Type == "":
		s.fail(refuse(protocol.DocErrBadMessage, "message has no type"), "", m.Doc, "")
		return
	case m.Type != protocol.DocTypeCursor:
		s.fail(refuse(protocol.DocErrBadMessage, "the cursors channel carries only cursor messages, not "+m.Type), "", m.Doc, "")
		return
	case m.Doc == "" || m.Rev == nil || m.Anchor == nil || m.Head == nil:
		s.fail(refuse(protocol.DocErrBadMessage, "cursor needs doc, rev, anchor and head"), "", m.Doc, "")
		return
	case *m.Rev < 0 || *m.Anchor < 0 || *m.Head < 0:
		s.fail(refuse(protocol.DocErrBadMessage, "cursor positions and revision cannot be negative"), "", m.Doc, "")
		return
	}
	if !s.hasOpen(m.Doc) {
		s.fail(refuse(protocol.DocErrNotOpen, "open the document before sending cursors in it"), "", m.Doc, "")
		return
	}
	c := &protocol.Cursor{Type: protocol.DocTypeCursor, Doc: m.Doc, Rev: *m.Rev, Anchor: *m.Anchor, Head: *m.Head}
	b := &s.cur
	b.mu.Lock()
	st := b.docs[m.Doc]
	if st == nil {
		st = &cursorState{}
		b.docs[m.Doc] = st
	}
	st.pending = c
	b.mu.Unlock()
	signal(b.kick)
}

// FlushCursors passes every pending cursor on now, ignoring the interval
// (tests use it to check coalescing without waiting on a clock).
func (s *Session) FlushCursors() {
	s.cur.mu.Lock()
	s.cur.force = true
	s.cur.mu.Unlock()
	signal(s.cur.kick)
}

// CursorPending reports the session's cursor in doc that waits for its
// interval, and whether one was ever passed on; for tests.
func (s *Session) CursorPending(doc string) (c protocol.Cursor, pending, passed bool) {
	s.cur.mu.Lock()
	defer s.cur.mu.Unlock()
	st := s.cur.docs[doc]
	if st == nil {
		return c, false, false
	}
	if st.pending != nil {
		c, pending = *st.pending, true
	}
	return c, pending, !st.last.IsZero()
}

// cursorLoop passes cursors on, at most one per document per interval:
// the newest one when the interval is over.
func (s *Session) cursorLoop() {
	interval := s.srv.cfg.CursorInterval
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	b := &s.cur
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-b.kick:
		case <-timer.C:
		}
		now := time.Now()
		var due []*protocol.Cursor
		var wait time.Duration
		b.mu.Lock()
		force := b.force
		b.force = false
		for _, st := range b.docs {
			if st.pending == nil {
				continue
			}
			if since := now.Sub(st.last); force || since >= interval {
				due = append(due, st.pending)
				st.pending, st.last = nil, now
			} else if w := interval - since; wait == 0 || w < wait {
				wait = w
			}
		}
		b.mu.Unlock()
		for _, c := range due {
			s.forwardCursor(c)
		}
		if wait > 0 {
			timer.Reset(wait)
		}
	}
}

// forwardCursor transforms c to the newest revision and passes it to the
// others who have the document open, on their cursors channel (lossy).
func (s *Session) forwardCursor(c *protocol.Cursor) {
	srv := s.srv
	ops, err := srv.svc.OpsSince(s.ctx, c.Doc, c.Rev)
	if err != nil {
		s.log.Info("cursor dropped", "doc", c.Doc, "rev", c.Rev, "err", err)
		return
	}
	sel := ot.Selection{Anchor: c.Anchor, Head: c.Head}
	for _, r := range ops {
		sel = ot.TransformSelection(sel, r.Op, r.Author == s.p.Identity)
	}
	out := &protocol.Cursor{
		Type: protocol.DocTypeCursor, Doc: c.Doc, Rev: c.Rev + int64(len(ops)),
		Anchor: sel.Anchor, Head: sel.Head,
		Participant: s.p.ID, Name: s.p.Name, Color: s.p.Color,
	}
	s.cur.sendMu.Lock()
	defer s.cur.sendMu.Unlock()
	if !s.hasOpen(c.Doc) || s.expired.Load() {
		return // closed or expired since: its removal went out, this must not follow it
	}
	out.Seq = s.srv.cursorSeq.Add(1)
	msg := mustEncode(out)
	for _, o := range srv.roomSessions(s.p.Room) {
		if o != s && o.hasOpen(c.Doc) {
			o.link.SendCursor(msg)
		}
	}
}

// broadcastCursorGone tells the others who have doc open that s's cursor
// in it is gone, on their collab channel (it must not be lost), numbered
// after every cursor of s that went out before it.
func (s *Session) broadcastCursorGone(room, doc string) {
	s.cur.sendMu.Lock()
	defer s.cur.sendMu.Unlock()
	msg := mustEncode(&protocol.Cursor{Type: protocol.DocTypeCursorGone, Doc: doc, Participant: s.p.ID, Seq: s.srv.cursorSeq.Add(1)})
	for _, o := range s.srv.roomSessions(room) {
		if o != s && o.hasOpen(doc) {
			o.sendControl(msg)
		}
	}
}
