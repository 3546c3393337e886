package sdk_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/sdk"
)

// A subscriber's RemoteTrack.RequestKeyframe reaches the publisher's
// KeyframeRequests through the server, long after the start (when the
// server's own requests for new subscribers are over).
func TestRequestKeyframeReachesPublisher(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tracks := make(chan *sdk.RemoteTrack, 1)
	var frames atomic.Int64
	join(t, ctx, srv, "bob", "kf", sdk.Options{OnTrack: func(rt *sdk.RemoteTrack) {
		tracks <- rt
		buf := make([]byte, 1600)
		for {
			if _, _, err := rt.Track.Read(buf); err != nil {
				return
			}
			frames.Add(1)
		}
	}})
	alice := join(t, ctx, srv, "alice", "kf", sdk.Options{})
	video, err := alice.PublishTrack(sdk.VP8, "camera")
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		key := true
		for n := uint32(0); ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-video.KeyframeRequests():
				requests.Add(1)
				key = true
			case <-tick.C:
			}
			if video.WriteSample(media.Sample{Data: vp8Frame(n, key), Duration: 20 * time.Millisecond}) != nil {
				return
			}
			key = false
		}
	}()
	var rt *sdk.RemoteTrack
	select {
	case rt = <-tracks:
	case <-ctx.Done():
		t.Fatal("bob got no track")
	}
	waitFor(t, "bob to get 100 packets", 30*time.Second, func() bool { return frames.Load() >= 100 })
	// Let the start-up requests settle: no new request for a second.
	before := requests.Load()
	for {
		time.Sleep(time.Second)
		if now := requests.Load(); now == before {
			break
		} else {
			before = now
		}
	}
	if err := rt.RequestKeyframe(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice to be asked for a keyframe", 10*time.Second, func() bool { return requests.Load() > before })
}
