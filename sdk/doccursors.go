package sdk

import (
	"encoding/json"
	"time"

	"github.com/huddle-rtc/huddle/collab/client"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Cursors and presence of a Document: the local selection sent on the
// lossy cursors channel, the others' carets mapped into the local text.
// SetCursor sets this participant's caret (anchor == head) or selection,
// in local code point positions. Updates are sent at most every
// CursorInterval; the last one always goes out.
func (d *Document) SetCursor(anchor, head int) {
	d.mu.Lock()
	n := d.c.Len()
	d.sel = ot.Selection{Anchor: clamp(anchor, n), Head: clamp(head, n)}
	d.hasSel, d.selDirty = true, true
	d.mu.Unlock()
	d.flushCursor()
}

// Cursor returns this participant's selection as the document moved it.
func (d *Document) Cursor() (anchor, head int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sel.Anchor, d.sel.Head
}

func clamp(v, n int) int { return max(0, min(v, n)) }

// flushCursor sends the local selection if it changed, when the document
// is synchronized (a cursor is reported against a server revision, so it
// waits for local edits' acks) and CursorInterval has passed since the
// last one; otherwise it arranges to try again.
func (d *Document) flushCursor() {
	d.mu.Lock()
	if !d.selDirty || d.closed || !d.opened || d.syncing || d.c.State() != client.Synchronized || d.cursorTimer != nil {
		d.mu.Unlock()
		return
	}
	if wait := CursorInterval - time.Since(d.lastCursor); wait > 0 {
		d.cursorTimer = time.AfterFunc(wait, d.cursorTimerFired)
		d.mu.Unlock()
		return
	}
	msg := protocol.Cursor{Type: protocol.DocTypeCursor, Doc: d.id, Rev: d.c.Revision(), Anchor: d.sel.Anchor, Head: d.sel.Head}
	d.selDirty = false
	d.lastCursor = time.Now()
	_, l := d.docs.currentLink()
	d.mu.Unlock()
	data, _ := json.Marshal(&msg)
	if l != nil && l.trySend(data) {
		return
	}
	// The lossy channel is full or busy: try again shortly.
	d.mu.Lock()
	d.selDirty = true
	if l != nil && d.cursorTimer == nil && !d.closed {
		d.cursorTimer = time.AfterFunc(CursorInterval, d.cursorTimerFired)
	}
	d.mu.Unlock()
}

func (d *Document) cursorTimerFired() {
	d.mu.Lock()
	d.cursorTimer = nil
	d.mu.Unlock()
	d.flushCursor()
}

// RemoteCursors returns the other participants' cursors, by participant
// id, in local positions.
func (d *Document) RemoteCursors() map[string]RemoteCursor {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]RemoteCursor, len(d.remote))
	for k, v := range d.remote {
		out[k] = *v
	}
	return out
}

// moveCursorsLocked moves the local and remote cursors through view, an
// edit applied to the local text by author.
func (d *Document) moveCursorsLocked(view ot.Op, author string) {
	if d.hasSel {
		d.sel = ot.TransformSelection(d.sel, view, false)
	}
	for _, rc := range d.remote {
		s := ot.TransformSelection(ot.Selection{Anchor: rc.Anchor, Head: rc.Head}, view, false)
		rc.Anchor, rc.Head = s.Anchor, s.Head
	}
	d.moveThreadsLocked(view)
}

// handleCursor takes another participant's cursor, reported at a server
// revision, and maps it into the local text.
func (d *Document) handleCursor(m *protocol.Cursor) {
	if m.Participant == "" || m.Participant == d.docs.room.selfID() {
		return
	}
	d.mu.Lock()
	if !d.opened || d.closed {
		d.mu.Unlock()
		return
	}
	var changes []Change
	if d.cursorLocked(m) {
		changes = append(changes, Change{Rev: d.c.Revision(), Cursor: m.Participant})
	}
	d.mu.Unlock()
	d.emit(changes, nil)
}

// cursorLocked records m if it can be placed now; one from the future
// waits in early until its revision arrives.
func (d *Document) cursorLocked(m *protocol.Cursor) bool {
	if m.Seq != 0 && m.Seq <= d.gone[m.Participant] {
		return false // decided before that participant's removal, which overtook it
	}
	cur := d.c.Revision()
	if m.Rev > cur || d.syncing {
		if old := d.early[m.Participant]; old == nil || old.Rev <= m.Rev {
			d.early[m.Participant] = m
		}
		return false
	}
	delete(d.early, m.Participant)
	if old := d.remote[m.Participant]; old != nil && (old.rev > m.Rev || m.Seq != 0 && old.seq > m.Seq) {
		return false // overtaken on the unordered channel by a newer one
	}
	sel := ot.Selection{Anchor: m.Anchor, Head: m.Head}
	if m.Rev < cur {
		i := len(d.hist)
		for i > 0 && d.hist[i-1].rev > m.Rev {
			i--
		}
		if i == len(d.hist) || d.hist[i].rev != m.Rev+1 {
			return false // too old to place: the next update will do
		}
		for _, h := range d.hist[i:] {
			sel = ot.TransformSelection(sel, h.op, false)
		}
	}
	sel, _ = d.c.RemoteSelection(sel, cur)
	n := d.c.Len()
	d.remote[m.Participant] = &RemoteCursor{Participant: m.Participant, Name: m.Name, Color: m.Color,
		Anchor: clamp(sel.Anchor, n), Head: clamp(sel.Head, n), rev: m.Rev, seq: m.Seq}
	return true
}

func (d *Document) resolveEarlyLocked() []Change {
	var changes []Change
	cur := d.c.Revision()
	for p, m := range d.early {
		if m.Rev <= cur && d.cursorLocked(m) {
			changes = append(changes, Change{Rev: cur, Cursor: p})
		}
	}
	return append(changes, d.placeEarlyThreadsLocked()...)
}

// maxGone bounds the removals a Document remembers; forgetting one only
// lets a cursor that a removal overtook show again until the next update.
const maxGone = 1024

func (d *Document) cursorGone(participant string, seq int64) {
	d.mu.Lock()
	if seq > d.gone[participant] {
		if _, known := d.gone[participant]; !known && len(d.gone) >= maxGone {
			for p := range d.gone {
				delete(d.gone, p)
				break
			}
		}
		d.gone[participant] = seq
	}
	_, had := d.remote[participant]
	delete(d.remote, participant)
	delete(d.early, participant)
	rev := d.c.Revision()
	d.mu.Unlock()
	if had {
		d.emit([]Change{{Rev: rev, Cursor: participant}}, nil)
	}
}

func (d *Document) handlePresence(ps []string) {
	in := make(map[string]bool, len(ps))
	for _, p := range ps {
		in[p] = true
	}
	d.mu.Lock()
	d.presence = append([]string(nil), ps...)
	var changes []Change
	for p := range d.remote {
		if !in[p] {
			delete(d.remote, p)
			changes = append(changes, Change{Rev: d.c.Revision(), Cursor: p})
		}
	}
	d.mu.Unlock()
	d.emit(changes, nil)
}
