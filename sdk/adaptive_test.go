package sdk_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
)

// TestSetRenderPinnedReachesServer: a bot's render size, hidden flag and
// pin reach the server's allocator for that video, and each report
// replaces the last (an unpin is a report without the pin).
func TestSetRenderPinnedReachesServer(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const room = "pins"
	var video atomic.Value
	sub := join(t, ctx, srv, "sub", room, sdk.Options{OnTrack: func(rt *sdk.RemoteTrack) {
		if rt.Info.Kind == "video" {
			video.Store(rt.Info.ID)
		}
		go func() { // every received track must be read
			buf := make([]byte, 1500)
			for {
				if _, _, err := rt.Track.Read(buf); err != nil {
					return
				}
			}
		}()
	}})
	pub := join(t, ctx, srv, "pub", room, sdk.Options{})
	publishVideo(ctx, t, pub, sdk.VP8, vp8Frame)

	var id string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if v, ok := video.Load().(string); ok {
			id = v
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no video arrived")
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect := func(r sdk.RenderSize) {
		t.Helper()
		if err := sub.SetRender(id, r); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			v, ok := srv.SubscribedVideo(room, sub.Self().ID, id)
			got := sdk.RenderSize{Width: v.Width, Height: v.Height, Hidden: v.Hidden, Pinned: v.Pinned}
			if ok && got == r {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server has %+v (known %v), want %+v", v, ok, r)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	expect(sdk.RenderSize{Width: 320, Height: 180, Pinned: true})
	expect(sdk.RenderSize{Width: 640, Height: 360})
	expect(sdk.RenderSize{Hidden: true, Pinned: true})
}
