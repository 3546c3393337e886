package clustertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
)

// redis-server stopped and restarted during a call with media and edits:
// video keeps flowing while Redis is away, no edit is acknowledged while
// it is away (each waits or is refused with a clear error), edits are
// acknowledged again once it is back, and every acknowledged edit is in
// the document exactly once.
func TestRedisRestartDuringCall(t *testing.T) {
	c := Start(t, Options{Nodes: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const room = "redis-restart"
	cl := startCall(t, ctx, c, room, 4)
	cl.waitAllEdited(time.Now(), 3, 30*time.Second)

	refusedBefore := map[string]int{}
	for _, b := range cl.bots {
		_, _, r := b.edits.snapshot()
		refusedBefore[b.id] = len(r)
	}
	c.Redis.Stop()
	// An acknowledgement already on its way when Redis stopped may arrive
	// just after; none may be made once Redis is gone.
	downAt := time.Now().Add(time.Second)
	t.Log("redis-server stopped")

	// Keep Redis away until every node has noticed and its membership has
	// lapsed (past the TTL): the outage is a real one, not a blip.
	WaitFor(t, 30*time.Second, func() string { return "every node to report its membership lapsed" }, func() bool {
		for _, n := range c.Nodes {
			h, _ := n.Health()["cluster"].(map[string]any)
			if h == nil || h["registered"] != false || h["redisOK"] != false {
				return false
			}
		}
		return true
	})
	lapsed := cl.counters()
	// While Redis is away: media flows, and each bot has an edit that waits
	// or was refused.
	WaitFor(t, 30*time.Second, func() string { return "fresh video at every bot while Redis is down: " + cl.videoSummary() }, func() bool {
		return cl.allVideoAfter(lapsed, 25)
	})
	WaitFor(t, 30*time.Second, func() string { return "every bot to have an edit pending or refused: " + cl.editSummary() }, func() bool {
		for _, b := range cl.bots {
			s, a, r := b.edits.snapshot()
			pending := len(s) > len(a)+len(r)
			if !pending && len(r) == refusedBefore[b.id] {
				return false
			}
		}
		return true
	})
	duringOutage := cl.counters()
	upAt := time.Now()
	c.Redis.Restart()
	t.Logf("redis-server restarted after %v", time.Since(downAt)+time.Second)

	for _, b := range cl.bots {
		b.edits.mu.Lock()
		for _, at := range b.edits.ackedAt {
			if at.After(downAt) && at.Before(upAt) {
				t.Errorf("%s had an edit acknowledged at %s while Redis was down (%s to %s)", b.id, stamp(at), stamp(downAt), stamp(upAt))
			}
		}
		for _, r := range b.edits.reported {
			var de *sdk.DocError
			if r.at.After(downAt) && r.at.Before(upAt) && (!errors.As(r.err, &de) || de.Code == "" || de.Message == "") {
				t.Errorf("%s's document reported an error without a code and message while Redis was down: %v", b.id, r.err)
			}
		}
		if n := len(b.edits.reported); n > 0 {
			t.Logf("%s's document reported %d errors, the last: %v", b.id, n, b.edits.reported[n-1].err)
		}
		for tok, err := range b.edits.refused {
			var de *sdk.DocError
			if !errors.As(err, &de) || de.Code == "" || de.Message == "" {
				t.Errorf("%s's edit %s was refused without a code and message: %v", b.id, tok, err)
			} else {
				t.Logf("%s's edit %s refused: %v", b.id, tok, err)
			}
		}
		b.edits.mu.Unlock()
	}

	cl.waitAllEdited(upAt, 3, 60*time.Second)
	WaitFor(t, 60*time.Second, func() string { return "fresh video after the restart: " + cl.videoSummary() }, func() bool {
		return cl.allVideoAfter(duringOutage, 25)
	})
	cl.finish(ctx)
	t.Logf("edits: %s", cl.editSummary())
}
