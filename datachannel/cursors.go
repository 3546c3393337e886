package datachannel

import (
	"encoding/json"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

type webrtcMessage = webrtc.DataChannelMessage

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// cursorState coalesces one peer's cursor in one document.
type cursorState struct {
	pending *protocol.Cursor // newest not yet passed on
	last    time.Time        // when one was last passed on
}

// cursorMessage takes a cursor update from the client.
func (pr *peer) cursorMessage(data []byte) {
	var m struct {
		Type   string `json:"type"`
		Doc    string `json:"doc"`
		Rev    *int64 `json:"rev"`
		Anchor *int   `json:"anchor"`
		Head   *int   `json:"head"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		pr.fail(&docErr{code: protocol.DocErrBadMessage, msg: "not a JSON message object", err: err}, "", "", "")
		return
	}
	switch {
	case m.Type != protocol.DocTypeCursor:
		if m.Type == "" {
			pr.fail(refuse(protocol.DocErrBadMessage, "message has no type"), "", m.Doc, "")
		} else {
			pr.fail(refuse(protocol.DocErrBadMessage, "the cursors channel carries only cursor messages, not "+m.Type), "", m.Doc, "")
		}
		return
	case m.Doc == "" || m.Rev == nil || m.Anchor == nil || m.Head == nil:
		pr.fail(refuse(protocol.DocErrBadMessage, "cursor needs doc, rev, anchor and head"), "", m.Doc, "")
		return
	case *m.Rev < 0 || *m.Anchor < 0 || *m.Head < 0:
		pr.fail(refuse(protocol.DocErrBadMessage, "cursor positions and revision cannot be negative"), "", m.Doc, "")
		return
	}
	if !pr.hasOpen(m.Doc) {
		pr.fail(refuse(protocol.DocErrNotOpen, "open the document before sending cursors in it"), "", m.Doc, "")
		return
	}
	c := &protocol.Cursor{Type: protocol.DocTypeCursor, Doc: m.Doc, Rev: *m.Rev, Anchor: *m.Anchor, Head: *m.Head}
	pr.curMu.Lock()
	st := pr.cursors[m.Doc]
	if st == nil {
		st = &cursorState{}
		pr.cursors[m.Doc] = st
	}
	st.pending = c
	pr.curMu.Unlock()
	signal(pr.cursorKick)
}

// flushCursors passes every pending cursor on now, ignoring the interval.
func (pr *peer) flushCursors() {
	pr.curMu.Lock()
	pr.cursorForce = true
	pr.curMu.Unlock()
	signal(pr.cursorKick)
}

// cursorLoop passes cursors on, at most one per document per interval:
// the newest one when the interval is over.
func (pr *peer) cursorLoop() {
	interval := pr.hub.cfg.CursorInterval
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-pr.ctx.Done():
			return
		case <-pr.cursorKick:
		case <-timer.C:
		}
		now := time.Now()
		var due []*protocol.Cursor
		var wait time.Duration
		pr.curMu.Lock()
		force := pr.cursorForce
		pr.cursorForce = false
		for _, st := range pr.cursors {
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
		pr.curMu.Unlock()
		for _, c := range due {
			pr.forwardCursor(c)
		}
		if wait > 0 {
			timer.Reset(wait)
		}
	}
}

// forwardCursor transforms c to the newest revision and sends it to the
// others who have the document open, on their cursors channel, dropping it
// for those whose channel is backed up.
func (pr *peer) forwardCursor(c *protocol.Cursor) {
	h := pr.hub
	ops, err := h.svc.OpsSince(pr.ctx, c.Doc, c.Rev)
	if err != nil {
		pr.log.info("cursor dropped", "doc", c.Doc, "rev", c.Rev, "err", err)
		return
	}
	sel := ot.Selection{Anchor: c.Anchor, Head: c.Head}
	for _, r := range ops {
		sel = ot.TransformSelection(sel, r.Op, r.Author == pr.p.Identity)
	}
	out := &protocol.Cursor{
		Type: protocol.DocTypeCursor, Doc: c.Doc, Rev: c.Rev + int64(len(ops)),
		Anchor: sel.Anchor, Head: sel.Head,
		Participant: pr.p.ID, Name: pr.p.Name, Color: pr.p.Color,
	}
	msg := string(mustEncode(out))
	for _, o := range h.roomPeers(pr.p.Room) {
		if o == pr {
			continue
		}
		h.mu.Lock()
		ch := o.cursorsCh
		open := o.docs[c.Doc] != nil
		h.mu.Unlock()
		if ch == nil || !open || ch.ReadyState() != webrtc.DataChannelStateOpen {
			continue
		}
		if ch.BufferedAmount() >= uint64(h.cfg.CursorHighWater) {
			continue // lossy: the next one replaces it
		}
		o.cursorSend.Lock()
		_ = ch.SendText(msg)
		o.cursorSend.Unlock()
	}
}
