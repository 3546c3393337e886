package web_test

// Adaptive quality in the browser: the page publishes its camera in three
// simulcast layers, reports how large it shows each remote video (and
// which one is pinned), honours dynacast, and the server sends each viewer
// the layer its tile needs.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/internal/metricstest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sfu"
)

// layerPackets scrapes the server's per-layer received packet counters
// (q, h, f) from /metrics.
func layerPackets(t *testing.T, srv *node.Node) map[string]float64 {
	t.Helper()
	const name = `huddle_media_layer_packets_received_total{layer="`
	out := map[string]float64{}
	for series, v := range metricstest.Scrape(t, srv.URL()) {
		if rest, ok := strings.CutPrefix(series, name); ok {
			out[strings.TrimSuffix(rest, `"}`)] = v
		}
	}
	return out
}

type adaptiveState struct {
	RenderSizes []struct {
		TrackID string `json:"trackId"`
		Width   int    `json:"width"`
		Height  int    `json:"height"`
		Hidden  bool   `json:"hidden"`
		Pinned  bool   `json:"pinned"`
	} `json:"renderSizes"`
	Paused []struct {
		TrackID string `json:"trackId"`
		Reason  string `json:"reason"`
	} `json:"paused"`
	CameraLayers []struct {
		RID    string `json:"rid"`
		Active bool   `json:"active"`
	} `json:"cameraLayers"`
}

func adaptiveOf(t *testing.T, b *browser) adaptiveState {
	t.Helper()
	s, err := eval[adaptiveState](b, `window.huddle.adaptive()`)
	if err != nil {
		t.Fatalf("%s: adaptive state: %v", b.name, err)
	}
	return s
}

// activeLayers lists the rids of the camera's encodings that are active.
func (s adaptiveState) activeLayers() string {
	var on []string
	for _, l := range s.CameraLayers {
		if l.Active {
			on = append(on, l.RID)
		}
	}
	return strings.Join(on, ",")
}

// waitForwardedLayer waits until the server forwards layer want of track
// to the viewer, unpaused; it returns what the server knows of it.
func waitForwardedLayer(t *testing.T, srv *node.Node, viewer *browser, room, viewerID, track string, want int, what string) sfu.SubscribedVideo {
	t.Helper()
	var v sfu.SubscribedVideo
	waitFor(t, 90*time.Second, what, func() (bool, string) {
		var ok bool
		v, ok = srv.SubscribedVideo(room, viewerID, track)
		return ok && v.Layer == want && !v.Paused, fmt.Sprintf("server: %+v (known %v); %s reports %+v; packets per layer %v",
			v, ok, viewer.name, adaptiveOf(t, viewer).RenderSizes, layerPackets(t, srv))
	})
	return v
}

// pinTile presses the pin button of participant id's tile in b's page.
func pinTile(t *testing.T, b *browser, id string) {
	t.Helper()
	ok, err := eval[bool](b, fmt.Sprintf(`(() => {
		const btn = document.querySelector('.tile[data-participant-id=%q] .tile-btn.pin');
		if (!btn) return false;
		btn.click();
		return true;
	})()`, id))
	if err != nil || !ok {
		t.Fatalf("%s: pin %s: %v %v", b.name, id, ok, err)
	}
}

// TestSimulcastFollowsTileSize: Alice publishes her camera from chromium
// in three simulcast layers, and all three arrive at the server. Bob
// watches in another chromium. With his window small, his tile of Alice is
// small: the server forwards him the low layer, and the layers nobody
// needs are switched off in Alice's browser (dynacast). When Bob enlarges
// his window and pins Alice, his page reports the larger, pinned tile and
// he gets the high layer, decoded larger, with the layer back on in
// Alice's browser.
func TestSimulcastFollowsTileSize(t *testing.T) {
	srv := startServer(t)
	alice := newBrowser(t, "alice")
	alice.dumpLogsOnFailure()
	bob := newBrowser(t, "bob")
	bob.dumpLogsOnFailure()

	const room = "simulcast"
	aliceID := joinByTyping(t, alice, srv.URL()+"/", "Alice", room)
	_, video := serverTrackIDs(t, alice)
	// Bob only watches: one encoder less on a busy test machine.
	bob.mustDo(10*time.Second, "small window", chromedp.EmulateViewport(480, 320))
	bobID := joinByTyping(t, bob, srv.URL()+"/?nomedia=1", "Bob", room)
	waitVideoFlowing(t, bob, aliceID, "Alice")

	// The page offers three encodings of the camera.
	a := adaptiveOf(t, alice)
	if len(a.CameraLayers) != 3 || a.CameraLayers[0].RID != "q" || a.CameraLayers[1].RID != "h" || a.CameraLayers[2].RID != "f" {
		t.Fatalf("alice's camera encodings %+v, want q, h, f", a.CameraLayers)
	}

	// Small tile: the low layer.
	if v := waitForwardedLayer(t, srv, bob, room, bobID, video, 0, "bob, with a small tile, to get layer q"); v.Height == 0 || v.Height > 200 || v.Hidden || v.Pinned {
		t.Errorf("the server has bob's tile of alice as %+v, want small, shown, not pinned", v)
	}
	// The server's layer changes when it sends q's keyframe; the decoder
	// shows it a little later (q is 320x180, h 360 high, f 720, less when
	// chromium scales its encoder down under load).
	var small videoStat
	waitFor(t, 30*time.Second, "bob to decode the low layer", func() (bool, string) {
		s, ok, seen := framesFrom(bob, aliceID)
		small = s
		return ok && s.Height > 0 && s.Height <= 200, seen
	})
	rs := adaptiveOf(t, bob).RenderSizes
	if len(rs) != 1 || rs[0].TrackID != video || rs[0].Hidden || rs[0].Height == 0 || rs[0].Height > 200 {
		t.Errorf("bob's render size reports %+v, want one small visible tile for %s", rs, video)
	}
	// Dynacast: nobody needs f, so Alice's browser stops encoding it.
	waitFor(t, 30*time.Second, "alice's browser to stop encoding layer f", func() (bool, string) {
		s := adaptiveOf(t, alice)
		return !strings.Contains(s.activeLayers(), "f"), "active: " + s.activeLayers()
	})
	bob.screenshot("simulcast-small-bob.png")

	// Enlarged and pinned: the high layer.
	bob.mustDo(10*time.Second, "large window", chromedp.EmulateViewport(1920, 1200))
	pinTile(t, bob, aliceID)
	waitFor(t, 20*time.Second, "bob's page to report a large pinned tile", func() (bool, string) {
		rs := adaptiveOf(t, bob).RenderSizes
		return len(rs) == 1 && rs[0].Pinned && rs[0].Height > 420, fmt.Sprintf("%+v", rs)
	})
	// The pin reaches the server's allocator (which serves pinned videos
	// before others when the downlink is short).
	if v := waitForwardedLayer(t, srv, bob, room, bobID, video, 2, "bob, with a large tile, to get layer f"); !v.Pinned || v.Height <= 420 {
		t.Errorf("the server has bob's tile of alice as %+v, want large and pinned", v)
	}
	waitFor(t, 30*time.Second, "alice's browser to encode layer f again", func() (bool, string) {
		s := adaptiveOf(t, alice)
		return strings.Contains(s.activeLayers(), "f"), "active: " + s.activeLayers()
	})
	var large videoStat
	waitFor(t, 60*time.Second, fmt.Sprintf("bob to decode Alice larger than the %dx%d of the low layer", small.Width, small.Height), func() (bool, string) {
		s, ok, seen := framesFrom(bob, aliceID)
		large = s
		return ok && s.Height > small.Height, seen
	})
	t.Logf("bob decoded alice at %dx%d with a small tile, %dx%d with a large one", small.Width, small.Height, large.Width, large.Height)

	// All three layers reached the server at some point of the call.
	waitFor(t, 30*time.Second, "packets of all three layers at the server", func() (bool, string) {
		m := layerPackets(t, srv)
		return m["q"] > 0 && m["h"] > 0 && m["f"] > 0, fmt.Sprintf("%v", m)
	})
	bob.screenshot("simulcast-large-bob.png")
}

// injectJS lets a test hand the page a server message, as if the server
// had sent it: the page's own socket is wrapped before the page loads.
const injectJS = `(() => {
  const Real = window.WebSocket;
  window.WebSocket = class extends Real {
    constructor(...args) { super(...args); window.__huddleSocket = this; }
  };
  window.__huddleInject = (msg) => window.__huddleSocket.onmessage({ data: JSON.stringify(msg) });
})();`

// pausedTile reads how b's tile of participant id shows a paused video.
type pausedTile struct {
	Paused   string `json:"paused"`
	Note     bool   `json:"note"`
	NoteText string `json:"noteText"`
}

func pausedTileOf(t *testing.T, b *browser, id string) pausedTile {
	t.Helper()
	p, err := eval[pausedTile](b, fmt.Sprintf(`(() => {
		const tile = document.querySelector('.tile[data-participant-id=%q]');
		const note = tile.querySelector('.paused-note');
		const r = note.getBoundingClientRect();
		return { paused: tile.dataset.videoPaused || '', note: !note.hidden && r.width > 0 && r.height > 0, noteText: note.textContent };
	})()`, id))
	if err != nil {
		t.Fatalf("%s: tile of %s: %v", b.name, id, err)
	}
	return p
}

// TestPausedVideoShown: a tile Bob cannot see (his own tile is full
// screen) is reported hidden, and the server pauses that video for him
// (reason "hidden", no note: nobody sees the tile), then resumes it when
// full screen ends. A video paused for bandwidth keeps its tile, dimmed,
// with a note saying why, until it resumes; that notice is handed to the
// page directly, since the test machine's loopback has no slow link.
func TestPausedVideoShown(t *testing.T) {
	srv := startServer(t)
	alice := newBrowser(t, "alice")
	alice.dumpLogsOnFailure()
	bob := newBrowser(t, "bob")
	bob.dumpLogsOnFailure()
	bob.addScript(injectJS)

	const room = "paused"
	aliceID := joinByTyping(t, alice, srv.URL()+"/", "Alice", room)
	_, video := serverTrackIDs(t, alice)
	bobID := joinByTyping(t, bob, srv.URL()+"/", "Bob", room)
	waitVideoFlowing(t, bob, aliceID, "Alice")

	// Bob's own tile full screen hides Alice's.
	bob.mustDo(10*time.Second, "full screen", chromedp.Click(chromedp.CSS(`.tile.local .tile-btn.full`)))
	waitFor(t, 30*time.Second, "the server to pause Alice's video for Bob", func() (bool, string) {
		v, _ := srv.SubscribedVideo(room, bobID, video)
		a := adaptiveOf(t, bob)
		return v.Paused && v.Hidden && len(a.Paused) == 1 && a.Paused[0].Reason == "hidden", fmt.Sprintf("server %+v; page %+v", v, a)
	})
	if p := pausedTileOf(t, bob, aliceID); p.Paused != "hidden" || p.Note {
		t.Errorf("hidden pause shown as %+v, want data-video-paused=hidden and no note", p)
	}
	if _, err := eval[bool](bob, `document.exitFullscreen().then(() => true)`); err != nil {
		t.Fatalf("exit full screen: %v", err)
	}
	waitFor(t, 30*time.Second, "the server to resume Alice's video for Bob", func() (bool, string) {
		v, _ := srv.SubscribedVideo(room, bobID, video)
		a := adaptiveOf(t, bob)
		return !v.Paused && !v.Hidden && len(a.Paused) == 0, fmt.Sprintf("server %+v; page %+v", v, a)
	})
	waitVideoFlowing(t, bob, aliceID, "Alice")

	inject := func(paused bool) {
		t.Helper()
		msg := fmt.Sprintf(`{type: 'videoPaused', trackId: %q, paused: %v, reason: %q}`, video, paused, map[bool]string{true: "bandwidth"}[paused])
		if _, err := eval[bool](bob, `(window.__huddleInject(`+msg+`), true)`); err != nil {
			t.Fatalf("inject: %v", err)
		}
	}
	inject(true)
	waitFor(t, 10*time.Second, "the paused note on Alice's tile", func() (bool, string) {
		p := pausedTileOf(t, bob, aliceID)
		return p.Paused == "bandwidth" && p.Note && strings.Contains(p.NoteText, "paused"), fmt.Sprintf("%+v", p)
	})
	bob.shoot(t, shotDir(t), "video-paused-bandwidth.png")
	inject(false)
	waitFor(t, 10*time.Second, "the paused note to go", func() (bool, string) {
		p := pausedTileOf(t, bob, aliceID)
		return p.Paused == "" && !p.Note, fmt.Sprintf("%+v", p)
	})
}

// TestJSRenderSizesBounded: the page's render-size reporter (adaptive.js)
// with 60 tiles sends 60 reports, never more than RENDER_PER_SECOND in
// any second, each tile's size once, the pinned one pinned; a change under
// 10 % is not reported, a larger one is, a tile that leaves the screen is
// reported hidden; and forgetting the tracks leaves no state behind.
func TestJSRenderSizesBounded(t *testing.T) {
	b := jsPage(t)
	type summary struct {
		Sent, Watched, Kept, Pending, Budget int
		MaxPerSecond                         int
		Bad                                  string
	}
	run := func(expr string) summary {
		t.Helper()
		s, err := eval[summary](b, `(() => { const r = window.r; `+expr+`; return r.summary(); })()`)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := eval[bool](b, `(() => {
		const sent = [];
		const rs = new t.adaptive.RenderSizes((type, f) => { sent.push({ type, at: performance.now(), ...f }); return true; }, (id) => id === 'T5');
		const els = [];
		for (let i = 0; i < 60; i++) {
			const el = document.createElement('div');
			el.style.cssText = 'position:absolute;width:50px;height:30px;left:' + (i % 10) * 60 + 'px;top:' + Math.floor(i / 10) * 40 + 'px';
			document.body.append(el);
			els.push(el);
			rs.watch('T' + i, el);
		}
		window.r = { rs, sent, els, summary: () => {
			let max = 0;
			for (const a of sent) max = Math.max(max, sent.filter((b) => b.at >= a.at && b.at - a.at < 1000).length);
			const bad = sent.filter((m) => m.type !== 'renderSize').map((m) => m.type).join(',');
			return { sent: sent.length, watched: rs.watched.size, kept: rs.sent.size, pending: rs.pending.size, budget: t.adaptive.RENDER_PER_SECOND, maxPerSecond: max, bad };
		} };
		return true;
	})()`); err != nil {
		t.Fatal(err)
	}
	// One measure now sends exactly the budget; the rest wait for it.
	if s := run(`r.rs.measure()`); s.Sent != s.Budget || s.Pending != 60-s.Budget {
		t.Fatalf("first measure: %+v, want the budget sent and the rest of 60 pending", s)
	}
	waitFor(t, 30*time.Second, "all 60 reports", func() (bool, string) {
		s := run(``)
		return s.Sent == 60 && s.Pending == 0, fmt.Sprintf("%+v", s)
	})
	if s := run(``); s.MaxPerSecond > s.Budget || s.Bad != "" {
		t.Fatalf("%+v: more than the budget in one second, or other messages", s)
	}
	check, err := eval[string](b, `(() => {
		const seen = new Set();
		for (const m of window.r.sent) {
			if (seen.has(m.trackId)) return 'twice: ' + m.trackId;
			seen.add(m.trackId);
			if (m.width !== 50 || m.height !== 30 || m.hidden || m.pinned !== (m.trackId === 'T5')) return 'wrong: ' + JSON.stringify(m);
		}
		return '';
	})()`)
	if err != nil || check != "" {
		t.Fatalf("reports: %s %v", check, err)
	}

	// 53 px is within 10 % of 50: not reported; 70 px is; an element gone
	// from the screen is hidden.
	run(`r.els[0].style.width = '53px'; r.els[1].style.width = '70px'; r.els[2].style.display = 'none'`)
	waitFor(t, 30*time.Second, "the resize and the hidden tile reported", func() (bool, string) {
		last, err := eval[[]map[string]any](b, `window.r.sent.slice(60)`)
		if err != nil {
			return false, err.Error()
		}
		got := map[string]string{}
		for _, m := range last {
			got[m["trackId"].(string)] = fmt.Sprintf("%vx%v hidden=%v", m["width"], m["height"], m["hidden"])
		}
		want := map[string]string{"T1": "70x30 hidden=false", "T2": "0x0 hidden=true"}
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("%v", got)
	})
	if s := run(`r.rs.measure()`); s.Sent != 62 {
		t.Errorf("an unchanged layout was reported again: %+v", s)
	}
	if s := run(`for (let i = 0; i < 60; i++) r.rs.unwatch('T' + i)`); s.Watched != 0 || s.Kept != 0 || s.Pending != 0 {
		t.Errorf("state left after every track ended: %+v", s)
	}
}
