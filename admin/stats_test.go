package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
)

// nextStats returns the stats of the next participants_quality event of
// room, by participant id, skipping every other event, or fails after
// 20 s.
func (c *sseClient) nextStats(t *testing.T, room string) map[string]admin.Stats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		e := c.nextAny(t)
		if e.typ != admin.ParticipantsQuality || e.ev.Room != room {
			if time.Now().After(deadline) {
				t.Fatalf("no participants_quality event of room %s within 20s", room)
			}
			continue
		}
		out := map[string]admin.Stats{}
		for _, st := range e.ev.Stats {
			out[st.ParticipantID] = st
		}
		return out
	}
}

// The dashboard's figures: a participant receiving a track shows what it
// is forwarded (recvBps) and publishes nothing (sendBps 0); the publisher,
// receiving nothing, shows recvBps 0. With one subscriber and one track,
// what the viewer is forwarded is what the talker publishes, give or take
// the packets in flight at the window's ends: over several windows the two
// agree within a wide margin, which catches a wrong unit or a sum over the
// wrong peers.
func TestStatsShowWhatEachParticipantReceives(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream := openSSE(t, srv.URL()+"/api/v1/events", serverAdminToken(t, srv), "")
	frames := sdktest.NewFrameLog()
	viewer := sdktest.Join(t, ctx, srv, "viewer", "r4", sdk.Options{OnTrack: frames.OnTrack})
	talker := sdktest.Join(t, ctx, srv, "talker", "r4", sdk.Options{})
	pub, err := sdktest.Publish(talker, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	sdktest.WaitFor(t, 20*time.Second, func() string { return "audio to reach the viewer" }, func() bool { return frames.Count("audio/opus") > 20 })
	v, tk := viewer.Self().ID, talker.Self().ID

	// The first window after the stream opens (or after the audio starts)
	// may hold nothing yet: wait for one that shows the forwarding.
	deadline := time.Now().Add(20 * time.Second)
	for st := stream.nextStats(t, "r4"); st[v].RecvBitrate == 0; st = stream.nextStats(t, "r4") {
		if time.Now().After(deadline) {
			t.Fatalf("viewer's recvBps stayed 0 while it received audio: %+v", st)
		}
	}
	var forwarded, published float64
	for range 4 {
		st := stream.nextStats(t, "r4")
		if st[v].RecvBitrate <= 0 || st[tk].SendBitrate <= 0 {
			t.Errorf("while the talker sends to the viewer: viewer recvBps %v, talker sendBps %v; want both > 0", st[v].RecvBitrate, st[tk].SendBitrate)
		}
		if st[tk].RecvBitrate != 0 || st[v].SendBitrate != 0 {
			t.Errorf("talker (receiving nothing) recvBps %v, viewer (publishing nothing) sendBps %v; want 0", st[tk].RecvBitrate, st[v].SendBitrate)
		}
		forwarded += st[v].RecvBitrate
		published += st[tk].SendBitrate
	}
	t.Logf("over 4 windows: viewer recvBps sum %.0f, talker sendBps sum %.0f", forwarded, published)
	if forwarded < published/2 || forwarded > published*3/2 {
		t.Errorf("over 4 windows the viewer recvBps summed to %.0f, the talker's sendBps to %.0f: want them within 50%%", forwarded, published)
	}
}
