package sdk_test

import (
	"context"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
)

// Two bots in a room: A's VP8 and Opus reach B complete and in order; a
// third bot joining late still gets video, starting with a keyframe.
func TestBotsExchangeMedia(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	bLog := newFrameLog()
	b := join(t, ctx, srv, "bob", "standup", sdk.Options{OnTrack: bLog.onTrack})
	a := join(t, ctx, srv, "alice", "standup", sdk.Options{})
	publishMedia(ctx, t, a)

	waitFor(t, "bob to get 100 video and audio frames ("+describe(bLog)+")", 30*time.Second, func() bool {
		return bLog.count("video") >= 100 && bLog.count("audio") >= 100
	})
	bLog.checkInOrder(t, "video")
	bLog.checkInOrder(t, "audio")
	if got := bLog.from["video"]; got != a.Self().ID {
		t.Errorf("video labelled as from %q, want alice %q", got, a.Self().ID)
	}

	cLog := newFrameLog()
	join(t, ctx, srv, "carol", "standup", sdk.Options{OnTrack: cLog.onTrack})
	waitFor(t, "late carol to get 50 video frames ("+describe(cLog)+")", 30*time.Second, func() bool {
		return cLog.count("video") >= 50
	})
	cLog.mu.Lock()
	firstKey := cLog.firstKey["video"]
	cLog.mu.Unlock()
	if !firstKey {
		t.Error("carol's first video frame was not a keyframe")
	}
	cLog.checkInOrder(t, "video")
	// Bob is unaffected by Carol's arrival.
	before := bLog.count("video")
	waitFor(t, "bob to keep receiving", 10*time.Second, func() bool { return bLog.count("video") >= before+25 })
	bLog.checkInOrder(t, "video")

	// Everyone sees everyone.
	if n := len(b.Participants()); n != 2 {
		t.Errorf("bob sees %d others, want 2", n)
	}
}
