package datachannel

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/collab/session"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func (c *tclient) cursorsSeen() []protocol.Cursor {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]protocol.Cursor(nil), c.curs...)
}

func (c *tclient) waitCursor(what string, match func(protocol.Cursor) bool) protocol.Cursor {
	c.t.Helper()
	var out protocol.Cursor
	c.waitUntil(what, func() bool {
		for _, cur := range c.cursorsSeen() {
			if match(cur) {
				out = cur
				return true
			}
		}
		return false
	})
	return out
}

// Cursors are transformed to the newest revision and passed to the others
// with the document open (name and colour added), at most one per interval;
// cursorGone and docPresence follow a close and a leave.
func TestCursorsAndPresence(t *testing.T) {
	// A long interval: the first cursor goes at once, later ones wait for
	// the interval (or the test's flush), so coalescing is seen without
	// timing assumptions.
	e := newEnv(t, Config{CursorInterval: time.Hour}, collab.Config{})
	doc := e.createDoc("d", "hello world")
	a, b, v := e.join("A", true), e.join("B", true), e.join("V", false)
	a.open(doc, nil)
	b.open(doc, nil)
	v.open(doc, nil)
	b.waitMsg("presence of three", func(m msg) bool {
		var p protocol.DocPresence
		json.Unmarshal(m.raw, &p)
		return m.Type == protocol.DocTypePresence && slices.Equal(p.Participants, []string{"A", "B", "V"})
	})

	// B inserts at the start before A's cursor (made at rev 0) is passed on.
	if _, err := e.svc.Submit(context.Background(), collab.SubmitRequest{DocID: doc, Author: "user-B", ClientOpID: "b1", BaseRev: 0, Op: ot.Op{}.Insert(">>")}); err != nil {
		t.Fatal(err)
	}
	a.sendCursor(doc, 0, 6, 11) // "world" selected at rev 0
	for _, rc := range []*tclient{b, v} {
		cur := rc.waitCursor("A's selection", func(c protocol.Cursor) bool { return c.Participant == "A" })
		want := protocol.Cursor{Type: protocol.DocTypeCursor, Doc: doc, Rev: 1, Anchor: 8, Head: 13, Participant: "A", Name: "Name A", Color: session.ColorFor("A"), Seq: cur.Seq}
		if cur != want || cur.Seq <= 0 {
			t.Fatalf("%s got %+v, want %+v", rc.p.ID, cur, want)
		}
	}
	// Ten quick updates: none passes before the interval; then only the
	// newest does.
	for i := 1; i <= 10; i++ {
		a.sendCursor(doc, 1, i, i)
	}
	pr := e.hub.Sessions().Session("A")
	waitFor(t, "cursors coalesced", func() bool {
		c, pending, _ := pr.CursorPending(doc)
		return pending && c.Anchor == 10
	})
	pr.FlushCursors()
	aSeq := b.waitCursor("newest cursor", func(c protocol.Cursor) bool { return c.Participant == "A" && c.Anchor == 10 }).Seq
	got := b.cursorsSeen()
	if len(got) != 2 {
		t.Fatalf("B got %d cursors, want the first and the newest: %+v", len(got), got)
	}
	if len(a.cursorsSeen()) != 0 {
		t.Fatalf("A got its own cursor back: %+v", a.cursorsSeen())
	}
	// A viewer's cursor is passed on too.
	v.sendCursor(doc, 1, 0, 2)
	vSeq := a.waitCursor("viewer's cursor", func(c protocol.Cursor) bool { return c.Participant == "V" && c.Head == 2 }).Seq

	// V closes the document: the others hear cursorGone and the new presence.
	if m := v.request(protocol.DocRequest{Type: protocol.DocTypeClose, Doc: doc}, protocol.DocTypeDone); m.Type != protocol.DocTypeDone {
		t.Fatalf("close: %s", m.raw)
	}
	for _, rc := range []*tclient{a, b} {
		rc.waitMsg("cursorGone V", func(m msg) bool {
			var c protocol.Cursor
			json.Unmarshal(m.raw, &c)
			// Numbered after V's cursor, so that a receiver can tell that
			// cursor older than the removal whatever order they arrive in.
			return m.Type == protocol.DocTypeCursorGone && c.Participant == "V" && c.Doc == doc && c.Seq > vSeq
		})
	}
	// A leaves.
	e.hub.Leave("A")
	b.waitMsg("cursorGone A", func(m msg) bool {
		var c protocol.Cursor
		json.Unmarshal(m.raw, &c)
		return m.Type == protocol.DocTypeCursorGone && c.Participant == "A" && c.Doc == doc && c.Seq > aSeq
	})
	b.waitMsg("presence of B alone", func(m msg) bool {
		var p protocol.DocPresence
		json.Unmarshal(m.raw, &p)
		return m.Type == protocol.DocTypePresence && slices.Equal(p.Participants, []string{"B"})
	})
	// The closed document takes no more cursors from V.
	v.sendCursor(doc, 1, 0, 0)
	v.docError("not_open", func(de protocol.DocError) bool { return de.Code == protocol.DocErrNotOpen && de.Doc == doc })
}

// Cursors are lossy: a receiver whose cursors channel is backed up misses
// updates instead of queueing them; it gets the next one once it drains.
// Channels with other labels are refused.
func TestCursorsDroppedForBackedUpReceiver(t *testing.T) {
	e := newEnv(t, Config{CursorInterval: time.Hour, CursorHighWater: 1000}, collab.Config{})
	doc := e.createDoc("d", "hello")
	a := e.join("A", true)
	a.open(doc, nil)

	fp := Participant{ID: "F", Identity: "f", Name: "F", Room: e.room}
	other := &fakeChannel{label: "chat"}
	e.hub.Attach(fp, nil) // nothing to do for a nil channel
	e.hub.attach(fp, other)
	if !other.isClosed() {
		t.Fatal("a channel with an unknown label was kept")
	}
	fcol := &fakeChannel{label: protocol.ChannelCollab}
	fcur := &fakeChannel{label: protocol.ChannelCursors, buffered: 5000}
	e.hub.attach(fp, fcol)
	e.hub.attach(fp, fcur)
	fcol.deliver(`{"type":"open","reqId":"o","doc":"` + doc + `"}`)
	waitFor(t, "F opened", func() bool {
		fcol.mu.Lock()
		defer fcol.mu.Unlock()
		for _, s := range fcol.sent {
			if strings.Contains(s, `"opened"`) {
				return true
			}
		}
		return false
	})
	pa := e.hub.Sessions().Session("A")

	a.sendCursor(doc, 0, 1, 1) // F's channel is backed up: dropped
	waitFor(t, "first cursor handled", func() bool {
		_, _, passed := pa.CursorPending(doc)
		return passed
	})
	fcur.mu.Lock()
	fcur.buffered = 0 // drained
	fcur.mu.Unlock()
	a.sendCursor(doc, 0, 2, 2)
	waitFor(t, "second cursor pending", func() bool {
		_, pending, _ := pa.CursorPending(doc)
		return pending
	})
	pa.FlushCursors()
	waitFor(t, "second cursor delivered", func() bool {
		fcur.mu.Lock()
		defer fcur.mu.Unlock()
		return len(fcur.sent) > 0
	})
	fcur.mu.Lock()
	sent := append([]string(nil), fcur.sent...)
	fcur.mu.Unlock()
	if len(sent) != 1 || !strings.Contains(sent[0], `"anchor":2`) {
		t.Fatalf("backed-up receiver got %q, want only the second cursor", sent)
	}
}
