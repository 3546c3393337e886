package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/signaling/netgate"
)

// gatedCall is a call whose first page (alice) reaches the server through
// a netgate, so that a test can cut or freeze her signaling, while bob's
// page connects directly; both are in one room with video flowing both
// ways when startGatedCall returns.
type gatedCall struct {
	gate           *netgate.Gate
	alice, bob     *browser
	aliceID, bobID string
	before         videoStat // alice's video at bob when the call was up
	ufrags         iceUfrags // alice's ICE ufrags then
}

type iceUfrags struct{ Publisher, Subscriber string }

func startGatedCall(t *testing.T, room string) *gatedCall {
	t.Helper()
	srv := startServer(t)
	c := &gatedCall{gate: netgate.Start(t, strings.TrimPrefix(srv.URL(), "http://"))}
	c.alice = newBrowser(t, "alice")
	c.alice.dumpLogsOnFailure()
	c.bob = newBrowser(t, "bob")
	c.bob.dumpLogsOnFailure()
	c.aliceID = joinByTyping(t, c.alice, "http://"+c.gate.Addr()+"/", "Alice", room)
	c.bobID = joinByTyping(t, c.bob, srv.URL()+"/", "Bob", room)
	c.before = waitVideoFlowing(t, c.bob, c.aliceID, "Alice")
	waitVideoFlowing(t, c.alice, c.bobID, "Bob")
	uf, err := eval[iceUfrags](c.alice, `window.huddle.iceUfrags()`)
	if err != nil || uf.Publisher == "" || uf.Subscriber == "" {
		t.Fatalf("alice's ICE ufrags with the call up: %+v %v", uf, err)
	}
	c.ufrags = uf
	return c
}

// waitResumed waits for alice's page to be back in the call by a resume:
// joined as the same participant, ICE restarted on both her
// PeerConnections, her video reaching bob from the same track with more
// than 30 frames past framesAt, and bob seeing her online.
func (c *gatedCall) waitResumed(t *testing.T, framesAt videoStat) {
	t.Helper()
	waitState(t, c.alice, "joined")
	if id, err := eval[string](c.alice, `window.huddle.participantId`); err != nil || id != c.aliceID {
		t.Fatalf("alice came back as %q (%v), was %q: a new join, not a resume", id, err, c.aliceID)
	}
	waitFor(t, 30*time.Second, "ICE to restart on both of alice's PeerConnections", func() (bool, string) {
		now, err := eval[iceUfrags](c.alice, `window.huddle.iceUfrags()`)
		return err == nil && now.Publisher != c.ufrags.Publisher && now.Subscriber != c.ufrags.Subscriber && now.Publisher != "" && now.Subscriber != "",
			fmt.Sprintf("before %+v now %+v %v", c.ufrags, now, err)
	})
	waitFor(t, 30*time.Second, "alice's video to keep reaching bob from the same track", func() (bool, string) {
		s, ok, seen := framesFrom(c.bob, c.aliceID)
		return ok && s.TrackID == c.before.TrackID && s.FramesDecoded > framesAt.FramesDecoded+30, seen
	})
	waitFor(t, 30*time.Second, "bob to see alice online", func() (bool, string) {
		p, err := eval[*presenceInfo](c.bob, fmt.Sprintf(`window.huddle.presenceOf(%q)`, c.aliceID))
		return err == nil && p != nil && p.State == "online" && !p.Reconnecting, fmt.Sprintf("%+v %v", p, err)
	})
}
