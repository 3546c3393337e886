package datachannel

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// A participant that goes silent without closing its channels (no
// heartbeat, nothing else) leaves the document's presence and its cursor
// is gone for the others; it comes back as soon as it sends anything.
// The expiry is shrunk from 30 s to 1 s: the test is about a silent client
// dropping out, not about the length of the wait.
func TestSilentParticipantExpires(t *testing.T) {
	e := newEnv(t, Config{PresenceExpiry: time.Second}, collab.Config{})
	doc := e.createDoc("d", "hello")
	a := e.join("A", true)
	b := e.join("B", true)
	a.open(doc, nil)
	b.open(doc, nil)
	beat := func(c *tclient) { c.send(&protocol.DocRequest{Type: protocol.DocTypeHeartbeat}) }
	presence := func(c *tclient, from int, want []string) func() bool {
		return func() bool {
			beat(c) // c itself stays present
			msgs := c.messages()
			for _, m := range msgs[min(from, len(msgs)):] {
				if m.Type != protocol.DocTypePresence {
					continue
				}
				var p protocol.DocPresence
				json.Unmarshal(m.raw, &p)
				if p.Doc == doc && slices.Equal(p.Participants, want) {
					return true
				}
			}
			return false
		}
	}
	b.waitUntil("both present", presence(b, 0, []string{"A", "B"}))
	a.sendCursor(doc, 0, 1, 1)
	b.waitCursor("A's cursor", func(c protocol.Cursor) bool { return c.Participant == "A" })

	// A says nothing more; B keeps beating.
	from := len(b.messages())
	b.waitUntil("A out of presence", presence(b, from, []string{"B"}))
	b.waitMsg("cursorGone for A", func(m msg) bool {
		var c protocol.Cursor
		json.Unmarshal(m.raw, &c)
		return m.Type == protocol.DocTypeCursorGone && c.Participant == "A" && c.Doc == doc
	})
	e.hub.mu.Lock()
	_, attached := e.hub.links["A"]
	e.hub.mu.Unlock()
	if !attached {
		t.Fatal("A's channels were closed: expiry must only take it out of presence")
	}

	// A beats again: present again.
	from = len(b.messages())
	beat(a)
	b.waitUntil("A present again", presence(b, from, []string{"A", "B"}))
}
