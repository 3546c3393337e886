package web_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

type shareView struct {
	Layout   string `json:"layout"`
	Screen   bool   `json:"screen"`
	Featured string `json:"featured"`
	ScreenW  float64
	Largest  bool   `json:"largest"`
	Tiles    int    `json:"tiles"`
	Name     string `json:"name"`
	Width    int    `json:"width"`
}

func shareViewOf(t *testing.T, b *browser, id string) shareView {
	t.Helper()
	v, err := eval[shareView](b, fmt.Sprintf(`(() => {
		const grid = document.getElementById('grid');
		const s = grid.querySelector('.tile[data-participant-id=%q]');
		const f = grid.querySelector('.tile.featured');
		const area = (el) => { const r = el.getBoundingClientRect(); return r.width * r.height; };
		const tiles = [...grid.querySelectorAll('.tile')];
		return {
			layout: grid.dataset.layout || '',
			screen: !!s,
			featured: f ? f.dataset.participantId : '',
			largest: !!s && tiles.every((t) => t === s || area(t) < area(s)),
			tiles: tiles.length,
			name: s ? s.querySelector('.name').textContent : '',
			width: s ? s.querySelector('video').videoWidth : 0,
		};
	})()`, id))
	if err != nil {
		t.Fatalf("%s: share view: %v", b.name, err)
	}
	return v
}

// TestScreenShare: Alice shares her screen (chromium's fake capture); Bob
// gets it as a tile of its own, large in the spotlight with the cameras
// beside it, while Alice's camera goes on. Stopping from the browser's own
// bar removes it everywhere; sharing again and stopping with the button
// does too.
func TestScreenShare(t *testing.T) {
	srv := startServer(t)
	alice := newBrowser(t, "alice", chromedp.Flag("auto-select-desktop-capture-source", "Entire screen"))
	alice.dumpLogsOnFailure()
	bob := newBrowser(t, "bob")
	bob.dumpLogsOnFailure()
	const room = "share"
	aliceID := joinByTyping(t, alice, srv.URL()+"/", "Alice", room)
	bobID := joinByTyping(t, bob, srv.URL()+"/", "Bob", room)
	waitVideoFlowing(t, bob, aliceID, "Alice")
	screenID := aliceID + ":screen"

	for round, stop := range []string{"browser bar", "button"} {
		alice.mustDo(10*time.Second, "click share", chromedp.Click(chromedp.ID("ctl-share")))
		waitFor(t, 15*time.Second, "alice to be sharing", func() (bool, string) {
			s := callOf(t, alice)
			e, _ := eval[*string](alice, `window.huddle.lastError`)
			return s.Sharing, fmt.Sprintf("%+v lastError=%s", s, deref(e))
		})
		waitFor(t, 20*time.Second, "bob to show alice's screen in the spotlight", func() (bool, string) {
			v := shareViewOf(t, bob, screenID)
			return v.Screen && v.Width > 0 && v.Layout == "spotlight" && v.Featured == screenID && v.Largest, fmt.Sprintf("%+v", v)
		})
		v := shareViewOf(t, bob, screenID)
		if v.Tiles != 3 || v.Name != "Alice's screen" {
			t.Errorf("bob's view with the share: %+v, want 3 tiles, the share named \"Alice's screen\"", v)
		}
		// Alice's camera still flows beside the share, as a track of its own.
		waitFor(t, 15*time.Second, "bob to decode alice's camera and screen", func() (bool, string) {
			stats, err := eval[[]videoStat](bob, `window.huddle.remoteVideoStats()`)
			n := 0
			for _, s := range stats {
				if s.ParticipantID == aliceID && s.FramesDecoded > 0 {
					n++
				}
			}
			return err == nil && n == 2, fmt.Sprintf("%+v %v", stats, err)
		})
		if round == 0 {
			bob.screenshot("share-bob.png")
			alice.screenshot("share-alice.png")
			dir := shotDir(t)
			for _, vp := range viewports {
				bob.setViewport(t, vp)
				time.Sleep(500 * time.Millisecond)
				bob.shoot(t, dir, "share-"+vp.name+".png")
			}
			bob.setViewport(t, viewports[0])
		}

		if stop == "browser bar" {
			if ok, err := eval[bool](alice, `window.huddle.endShareFromBrowser()`); err != nil || !ok {
				t.Fatalf("end the share as the browser would: %v %v", ok, err)
			}
		} else {
			alice.mustDo(10*time.Second, "click stop sharing", chromedp.Click(chromedp.ID("ctl-share")))
		}
		waitFor(t, 15*time.Second, "the share to end at alice ("+stop+")", func() (bool, string) {
			s := callOf(t, alice)
			v := shareViewOf(t, alice, screenID)
			return !s.Sharing && !v.Screen, fmt.Sprintf("%+v %+v", s, v)
		})
		waitFor(t, 15*time.Second, "bob to drop alice's screen ("+stop+")", func() (bool, string) {
			v := shareViewOf(t, bob, screenID)
			return !v.Screen && v.Layout == "grid" && v.Tiles == 2, fmt.Sprintf("%+v", v)
		})
	}
	_ = bobID
}
