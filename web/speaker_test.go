package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/sdk"
)

// talkingBot joins with an audio track whose packets carry the RFC 6464
// level it is told, and sends a 20 ms Opus frame every 20 ms until ctx ends.
func talkingBot(t *testing.T, ctx context.Context, serverURL, name, room string) (*sdk.Room, *sdk.LocalTrack) {
	t.Helper()
	r, err := sdk.Join(ctx, serverURL, devToken(t, serverURL, name, room), sdk.Options{})
	if err != nil {
		t.Fatalf("%s joins: %v", name, err)
	}
	t.Cleanup(func() { r.Leave() })
	tr, err := r.PublishTrack(sdk.Opus, "microphone")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		// A valid Opus packet: TOC of a 20 ms CELT frame, then silence.
		frame := []byte{0x78, 0, 0, 0}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = tr.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond})
		}
	}()
	return r, tr
}

// TestActiveSpeakerHighlight: two bots talk at different levels; the
// browser highlights the louder one's tile, and the other's once the
// levels swap.
func TestActiveSpeakerHighlight(t *testing.T) {
	srv := startServer(t)
	const room = "speakers"
	viewer := newBrowser(t, "viewer")
	viewer.dumpLogsOnFailure()
	joinByTyping(t, viewer, srv.URL()+"/?nomedia=1", "Viewer", room)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ann, annTrack := talkingBot(t, ctx, srv.URL(), "Ann", room)
	ben, benTrack := talkingBot(t, ctx, srv.URL(), "Ben", room)
	levels := func(a, b uint8) {
		t.Helper()
		if err := ann.SetAudioLevel(annTrack, a); err != nil {
			t.Fatal(err)
		}
		if err := ben.SetAudioLevel(benTrack, b); err != nil {
			t.Fatal(err)
		}
	}
	active := func(want *sdk.Room, other *sdk.Room) func() (bool, string) {
		return func() (bool, string) {
			w := tileOf(t, viewer, want.Self().ID)
			o := tileOf(t, viewer, other.Self().ID)
			s := callOf(t, viewer)
			return w.Active && !o.Active, fmt.Sprintf("want %+v other %+v speakers %v", w, o, s.Speakers)
		}
	}
	levels(15, 60)
	waitFor(t, 20*time.Second, "ann's tile highlighted", active(ann, ben))
	viewer.screenshot("speaker-ann.png")
	levels(60, 15)
	waitFor(t, 20*time.Second, "ben's tile highlighted once the levels swap", active(ben, ann))
	// Speaker view puts the active speaker in the spotlight.
	if _, err := eval[bool](viewer, `document.dispatchEvent(new KeyboardEvent('keydown', {key: 'l', bubbles: true}))`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "speaker view to feature ben", func() (bool, string) {
		s := callOf(t, viewer)
		return s.Featured != nil && *s.Featured == ben.Self().ID, fmt.Sprintf("%+v", s)
	})
	levels(127, 127)
	waitFor(t, 20*time.Second, "no highlight in silence", func() (bool, string) {
		a, b := tileOf(t, viewer, ann.Self().ID), tileOf(t, viewer, ben.Self().ID)
		return !a.Speaking && !b.Speaking, fmt.Sprintf("%+v %+v", a, b)
	})
}
