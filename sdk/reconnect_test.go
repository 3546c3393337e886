package sdk_test

import (
	"context"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestReconnectRepublishes: a bot whose connections drop reconnects by
// itself with the same identity, and its camera and microphone reach the
// other bot again from its new participant id.
func TestReconnectRepublishes(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bLog := newFrameLog()
	join(t, ctx, srv, "bob", "re", sdk.Options{OnTrack: bLog.onTrack})
	reconnected := make(chan protocol.Participant, 1)
	a := join(t, ctx, srv, "alice", "re", sdk.Options{OnReconnect: func(p protocol.Participant) { reconnected <- p }})
	publishMedia(ctx, t, a)
	waitFor(t, "bob to get alice's video ("+describe(bLog)+")", 20*time.Second, func() bool { return bLog.count("video") >= 50 })
	oldID := a.Self().ID

	a.DropConnection()
	var p protocol.Participant
	select {
	case p = <-reconnected:
	case <-ctx.Done():
		t.Fatal("alice did not reconnect")
	}
	if p.ID == oldID || p.Identity != "alice" || a.Self().ID != p.ID {
		t.Fatalf("after the reconnect alice is %+v (was %s)", p, oldID)
	}
	waitFor(t, "bob to get video and audio from alice's new session", 20*time.Second, func() bool {
		bLog.mu.Lock()
		defer bLog.mu.Unlock()
		return bLog.from["video"] == p.ID && bLog.from["audio"] == p.ID
	})
	before := bLog.count("video")
	waitFor(t, "video to keep flowing", 20*time.Second, func() bool { return bLog.count("video") >= before+50 })
	if a.Err() != nil {
		t.Fatalf("alice's session ended: %v", a.Err())
	}
}
