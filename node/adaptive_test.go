package node

import (
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestRenderSizeRateBounded: render sizes (which reallocate the sender's
// media each time) are limited per participant, below the connection's
// own message limit; the extra ones are refused with bad_message and a
// reason, and the connection stays.
func TestRenderSizeRateBounded(t *testing.T) {
	s := startTestServer(t, Config{})
	c := dialWS(t, s)
	c.joinAs(s, "ann", "r")
	// The join, 198 sizes and the chat below fit the connection's burst
	// (200), so none of them waits for a refill (with 199 the chat was
	// dropped as rate_limited on a fast machine); however the server's
	// one-second windows fall, one of them holds more than renderBurst.
	for i := 0; i < 198; i++ {
		c.sendMsg(&protocol.RenderSize{TrackID: "TR_x", Width: 320, Height: 180, Pinned: true})
	}
	e := c.waitFor(func(m any) bool {
		e, ok := m.(*protocol.Error)
		return ok && e.Code == protocol.CodeBadMessage && strings.Contains(e.Message, "too many render size")
	}).(*protocol.Error)
	if e.Ref != protocol.TypeRenderSize {
		t.Errorf("error ref %q, want %q", e.Ref, protocol.TypeRenderSize)
	}
	// Still connected: a chat round trip works.
	c.sendMsg(&protocol.Chat{ClientID: "c1", Text: "still here"})
	c.waitFor(func(m any) bool { cm, ok := m.(*protocol.ChatMessage); return ok && cm.Text == "still here" })
}
