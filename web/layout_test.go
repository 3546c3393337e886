package web_test

// Layout tests with screenshots: the page at a laptop size (1280x720) and
// a phone size (390x844) with 1, 2, 4 and 9 participants, the pre-join
// screen and the participant list. Each shot is checked, not only taken:
// the tiles fill the stage at 16:9 without overlapping, nothing spills
// sideways, and every control has a label or tooltip. The PNGs go to
// $HUDDLE_SCREENSHOT_DIR, or web/screenshots/ (git-ignored) when unset, for
// a person to look at.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/sdk"
)

type viewport struct {
	name   string
	w, h   int64
	mobile bool
}

var viewports = []viewport{{"1280x720", 1280, 720, false}, {"390x844", 390, 844, true}}

// shotDir is where the layout screenshots go.
func shotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("HUDDLE_SCREENSHOT_DIR")
	if dir == "" {
		dir = "screenshots"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot dir: %v", err)
	}
	return dir
}

func (b *browser) setViewport(t *testing.T, v viewport) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if v.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	b.mustDo(10*time.Second, "viewport "+v.name, chromedp.EmulateViewport(v.w, v.h, opts...))
}

// shoot saves a PNG of the viewport into dir.
func (b *browser) shoot(t *testing.T, dir, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("%s: screenshot %s: %v", b.name, file, err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

type layoutReport struct {
	Stage      rect     `json:"stage"`
	Tiles      []rect   `json:"tiles"`
	Layout     string   `json:"layout"`
	Overflow   int      `json:"overflow"`
	Unlabelled []string `json:"unlabelled"`
	Outside    []string `json:"outside"`
}

type rect struct {
	X, Y, W, H float64
}

func (r rect) overlaps(o rect) bool {
	return r.X+r.W > o.X+1 && o.X+o.W > r.X+1 && r.Y+r.H > o.Y+1 && o.Y+o.H > r.Y+1
}

// layoutJS measures the page: the stage, each tile, sideways overflow,
// visible controls without a name, and controls outside the viewport.
const layoutJS = `(() => {
	const r = (el) => { const b = el.getBoundingClientRect(); return {X: b.x, Y: b.y, W: b.width, H: b.height}; };
	const visible = (el) => { const b = el.getBoundingClientRect(); return b.width > 0 && b.height > 0 && getComputedStyle(el).visibility !== 'hidden'; };
	const grid = document.getElementById('grid');
	const unlabelled = [], outside = [];
	for (const el of document.querySelectorAll('button, select, input, a')) {
		if (!visible(el)) continue;
		const name = (el.getAttribute('aria-label') || el.title || el.textContent || '').trim() ||
			(el.id && document.querySelector('label[for="' + el.id + '"]') ? 'label' : '') || el.placeholder || '';
		if (!name) unlabelled.push(el.outerHTML.slice(0, 80));
		const b = el.getBoundingClientRect();
		if (el.closest('.tile-tools')) continue;
		if (b.right > document.documentElement.clientWidth + 1 || b.bottom > innerHeight + 1) outside.push((el.id || el.className) + ' at ' + Math.round(b.right) + ',' + Math.round(b.bottom));
	}
	return {
		stage: r(grid),
		tiles: [...grid.querySelectorAll('.tile')].map(r),
		layout: grid.dataset.layout || '',
		overflow: Math.max(document.documentElement.scrollWidth, innerWidth) - document.documentElement.clientWidth,
		unlabelled, outside,
	};
})()`

// checkLayout fails unless the tiles are 16:9, inside the stage, apart, and
// together fill its width or its height.
func checkLayout(t *testing.T, b *browser, what string, want int) layoutReport {
	t.Helper()
	var rep layoutReport
	waitFor(t, 10*time.Second, what+": "+fmt.Sprint(want)+" tiles laid out", func() (bool, string) {
		var err error
		rep, err = eval[layoutReport](b, layoutJS)
		if err != nil {
			return false, err.Error()
		}
		if len(rep.Tiles) != want {
			return false, fmt.Sprintf("%d tiles", len(rep.Tiles))
		}
		for _, tl := range rep.Tiles {
			if tl.W < 10 {
				return false, "a tile is not placed yet"
			}
		}
		return true, ""
	})
	time.Sleep(400 * time.Millisecond) // the placement transition (0.2 s)
	rep, _ = eval[layoutReport](b, layoutJS)
	s := rep.Stage
	if s.W < 100 || s.H < 100 {
		t.Errorf("%s: the stage is %+v", what, s)
	}
	minX, minY, maxX, maxY := s.X+s.W, s.Y+s.H, s.X, s.Y
	for i, tl := range rep.Tiles {
		if a := tl.W / tl.H; rep.Layout == "grid" && (a < 16.0/9-0.05 || a > 16.0/9+0.05) {
			t.Errorf("%s: tile %d is %.0fx%.0f, not 16:9", what, i, tl.W, tl.H)
		}
		if tl.X < s.X-1 || tl.Y < s.Y-1 || tl.X+tl.W > s.X+s.W+1 || tl.Y+tl.H > s.Y+s.H+1 {
			t.Errorf("%s: tile %d %+v sticks out of the stage %+v", what, i, tl, s)
		}
		for j := i + 1; j < len(rep.Tiles); j++ {
			if tl.overlaps(rep.Tiles[j]) {
				t.Errorf("%s: tiles %d %+v and %d %+v overlap", what, i, tl, j, rep.Tiles[j])
			}
		}
		minX, minY = min(minX, tl.X), min(minY, tl.Y)
		maxX, maxY = max(maxX, tl.X+tl.W), max(maxY, tl.Y+tl.H)
	}
	if rep.Layout == "grid" {
		// Uses the stage: the block of tiles spans its width or its height
		// (less the gaps' rounding).
		if maxX-minX < s.W-16 && maxY-minY < s.H-16 {
			t.Errorf("%s: the tiles span %.0fx%.0f of a %.0fx%.0f stage", what, maxX-minX, maxY-minY, s.W, s.H)
		}
	}
	if rep.Overflow > 0 {
		t.Errorf("%s: the page is %dpx wider than the window", what, rep.Overflow)
	}
	if len(rep.Unlabelled) > 0 {
		t.Errorf("%s: controls without a label or tooltip: %s", what, strings.Join(rep.Unlabelled, "; "))
	}
	if len(rep.Outside) > 0 {
		t.Errorf("%s: controls outside the window: %s", what, strings.Join(rep.Outside, "; "))
	}
	return rep
}

// TestLayoutScreenshots: the pre-join screen, then a call growing from 1 to
// 9 participants (one browser with a camera, the rest SDK bots without),
// and the participant list, each at both sizes.
func TestLayoutScreenshots(t *testing.T) {
	srv := startServer(t)
	dir := shotDir(t)
	me := newBrowser(t, "ada")
	me.dumpLogsOnFailure()
	const room = "layout"

	for _, v := range viewports {
		me.setViewport(t, v)
		me.mustDo(20*time.Second, "open the page",
			chromedp.Navigate(srv.URL()+"/?room="+room+"&name=Ada"),
			chromedp.WaitVisible(chromedp.ID("join")))
		waitFor(t, 15*time.Second, "the camera preview", func() (bool, string) {
			w, err := eval[int](me, `document.getElementById('preview').videoWidth`)
			return err == nil && w > 0, fmt.Sprint(w, err)
		})
		rep, err := eval[layoutReport](me, layoutJS)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Overflow > 0 || len(rep.Unlabelled) > 0 || len(rep.Outside) > 0 {
			t.Errorf("pre-join %s: overflow %d, unlabelled %v, outside %v", v.name, rep.Overflow, rep.Unlabelled, rep.Outside)
		}
		waitFor(t, 15*time.Second, "the microphone level meter to move", func() (bool, string) {
			w, err := eval[string](me, `document.getElementById('mic-meter').style.width`)
			return err == nil && w != "" && w != "0%", fmt.Sprint(w, err)
		})
		picks, err := eval[int](me, `document.getElementById('pick-camera').options.length + document.getElementById('pick-mic').options.length`)
		if err != nil || picks < 2 {
			t.Errorf("pre-join %s: %d device options (%v), want cameras and microphones listed", v.name, picks, err)
		}
		me.shoot(t, dir, "prejoin-"+v.name+".png")
	}

	me.mustDo(10*time.Second, "join", chromedp.Click(chromedp.ID("join")))
	waitState(t, me, "joined")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var bob *browser
	bots := 0
	for _, n := range []int{1, 2, 4, 9} {
		for have := 1 + bots + boolInt(bob != nil); have < n; have++ {
			if bob == nil {
				bob = newBrowser(t, "bob")
				bob.dumpLogsOnFailure()
				joinByTyping(t, bob, srv.URL()+"/", "Bob", room)
				continue
			}
			bots++
			name := fmt.Sprintf("Bot %d", bots)
			r, err := sdk.Join(ctx, srv.URL(), devToken(t, srv.URL(), name, room), sdk.Options{})
			if err != nil {
				t.Fatalf("%s joins: %v", name, err)
			}
			t.Cleanup(func() { r.Leave() })
		}
		for _, v := range viewports {
			me.setViewport(t, v)
			what := fmt.Sprintf("%d participants at %s", n, v.name)
			checkLayout(t, me, what, n)
			me.shoot(t, dir, fmt.Sprintf("call-%d-%s.png", n, v.name))
		}
		if n == 4 {
			pinBob(t, me, dir)
		}
	}

	// Hiding the documents gives the stage the whole width: no empty column.
	me.setViewport(t, viewports[0])
	before := checkLayout(t, me, "9 participants with documents", 9)
	me.mustDo(10*time.Second, "hide documents", chromedp.Click(chromedp.ID("docs-toggle")))
	waitFor(t, 10*time.Second, "the stage to take the documents' place", func() (bool, string) {
		rep, err := eval[layoutReport](me, layoutJS)
		hidden, _ := eval[bool](me, `document.getElementById('docs-panel').hidden`)
		return err == nil && hidden && rep.Stage.W > before.Stage.W+300 && rep.Stage.W > 1200, fmt.Sprintf("%+v hidden=%v", rep.Stage, hidden)
	})
	checkLayout(t, me, "9 participants without documents", 9)
	me.shoot(t, dir, "call-9-nodocs-1280x720.png")
	me.mustDo(10*time.Second, "show documents", chromedp.Click(chromedp.ID("ctl-docs")))
	waitFor(t, 10*time.Second, "the documents back", func() (bool, string) {
		hidden, err := eval[bool](me, `document.getElementById('docs-panel').hidden`)
		return err == nil && !hidden, fmt.Sprint(hidden, err)
	})
	// The device panel in the call.
	me.mustDo(10*time.Second, "open devices", chromedp.Click(chromedp.ID("ctl-devices")))
	n, err := eval[int](me, `document.querySelectorAll('#devices-pop select').length`)
	if err != nil || n != 3 {
		t.Errorf("device panel has %d pickers (%v), want 3", n, err)
	}
	me.shoot(t, dir, "devices-1280x720.png")
	me.mustDo(10*time.Second, "close devices", chromedp.Click(chromedp.ID("ctl-devices")))

	// The participant list, with a raised hand in it.
	me.mustDo(10*time.Second, "raise hand", chromedp.Click(chromedp.ID("ctl-hand")))
	for _, v := range viewports {
		me.setViewport(t, v)
		me.clickUntil(10*time.Second, "open the list", "#ctl-people", `!document.getElementById('people-panel').hidden`)
		waitFor(t, 10*time.Second, "9 people listed, ada's hand up", func() (bool, string) {
			s, err := eval[string](me, `[...document.querySelectorAll('#people-list li')].map((li) => li.textContent + (li.querySelector('.pflag.hand') ? '+hand' : '')).join('|')`)
			return err == nil && strings.Count(s, "|") == 8 && strings.HasPrefix(s, "Ada (you)") && strings.Contains(s, "+hand"), s
		})
		time.Sleep(300 * time.Millisecond)
		rep, _ := eval[layoutReport](me, layoutJS)
		if rep.Overflow > 0 || len(rep.Unlabelled) > 0 {
			t.Errorf("participant list at %s: overflow %d, unlabelled %v", v.name, rep.Overflow, rep.Unlabelled)
		}
		me.shoot(t, dir, "people-"+v.name+".png")
		me.clickUntil(10*time.Second, "close the list", "#people-close", `document.getElementById('people-panel').hidden`)
	}
	checkChat(t, me, bob, dir)
	// The help overlay lists the shortcuts.
	me.setViewport(t, viewports[0])
	if _, err := eval[bool](me, `document.dispatchEvent(new KeyboardEvent('keydown', {key: '?', bubbles: true}))`); err != nil {
		t.Fatal(err)
	}
	keys, err := eval[string](me, `document.getElementById('help').hidden ? '' : document.getElementById('help-keys').textContent`)
	if err != nil || !strings.Contains(keys, "microphone") || !strings.Contains(keys, "Space") || !strings.Contains(keys, "chat") {
		t.Errorf("help overlay shows %q (%v)", keys, err)
	}
	me.shoot(t, dir, "help-1280x720.png")
	tips, _ := eval[[]string](me, `[...document.querySelectorAll('#grid .tile')].map((t) => t.querySelector('.name').textContent + ': ' + t.querySelector('.badge.quality').title)`)
	t.Logf("quality as shown: %s", strings.Join(tips, "; "))
	t.Logf("screenshots in %s", dir)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pinBob pins Bob's tile: it becomes the large one, for this viewer only;
// pinning again goes back to the grid.
func pinBob(t *testing.T, me *browser, dir string) {
	t.Helper()
	me.setViewport(t, viewports[0])
	checkLayout(t, me, "4 participants before the pin", 4) // and let the tiles settle: a moving button is missed
	bobID, err := eval[string](me, `[...document.querySelectorAll('#grid .tile')].find((t) => t.querySelector('.name').textContent === 'Bob').dataset.participantId`)
	if err != nil || bobID == "" {
		t.Fatalf("bob's tile: %q %v", bobID, err)
	}
	pin := fmt.Sprintf(`#grid .tile[data-participant-id=%q] .tile-btn.pin`, bobID)
	waitStill(t, me, pin)
	me.mustDo(10*time.Second, "pin bob", chromedp.Click(pin))
	waitFor(t, 10*time.Second, "bob featured", func() (bool, string) {
		s := callOf(t, me)
		rep, _ := eval[layoutReport](me, layoutJS)
		return s.Featured != nil && *s.Featured == bobID && rep.Layout == "spotlight", fmt.Sprintf("%+v %s", s.Featured, rep.Layout)
	})
	checkLayout(t, me, "4 participants, bob pinned", 4)
	me.shoot(t, dir, "pinned-1280x720.png")
	// Full screen for one tile, and back.
	full := fmt.Sprintf(`#grid .tile[data-participant-id=%q] .tile-btn.full`, bobID)
	waitStill(t, me, full)
	me.mustDo(10*time.Second, "full screen", chromedp.Click(full))
	waitFor(t, 10*time.Second, "bob's tile full screen", func() (bool, string) {
		id, err := eval[string](me, `document.fullscreenElement ? document.fullscreenElement.dataset.participantId : ''`)
		return err == nil && id == bobID, fmt.Sprint(id, err)
	})
	waitStill(t, me, full)
	me.mustDo(10*time.Second, "leave full screen", chromedp.Click(full))
	waitFor(t, 10*time.Second, "full screen left", func() (bool, string) {
		in, err := eval[bool](me, `!!document.fullscreenElement`)
		return err == nil && !in, fmt.Sprint(in, err)
	})
	waitStill(t, me, pin)
	me.mustDo(10*time.Second, "unpin bob", chromedp.Click(pin))
	waitFor(t, 10*time.Second, "the grid again", func() (bool, string) {
		rep, _ := eval[layoutReport](me, layoutJS)
		return rep.Layout == "grid", rep.Layout
	})
}

// waitStill waits until an element has stopped moving (tiles glide to new
// places for 0.2 s; a click aimed at a moving button misses).
func waitStill(t *testing.T, b *browser, sel string) {
	t.Helper()
	pos := fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return [r.x, r.y, r.width, r.height].join(','); })()`, sel)
	last := ""
	waitFor(t, 10*time.Second, sel+" to stop moving", func() (bool, string) {
		p, err := eval[string](b, pos)
		if err != nil {
			return false, err.Error()
		}
		still := p == last
		last = p
		return still, p
	})
}

// checkChat: the chat is a panel toggled from the control bar. Closed, a
// message from bob shows as a count on the Chat control; opening the panel
// (at both sizes) marks it read, and closing it gives the stage its width
// back.
func checkChat(t *testing.T, me, bob *browser, dir string) {
	t.Helper()
	me.setViewport(t, viewports[0])
	full := checkLayout(t, me, "9 participants, chat closed", 9)
	if open, err := eval[bool](me, `!document.getElementById('chat-panel').hidden`); err != nil || open {
		t.Errorf("the chat panel is open before it was asked for (%v)", err)
	}
	for k, v := range viewports {
		me.setViewport(t, v)
		for i := 1; i <= 2; i++ {
			if _, err := eval[string](bob, fmt.Sprintf(`window.huddle.sendChat("hello %d from Bob")`, 2*k+i)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 15*time.Second, "ada's Chat control to count 2 unread", func() (bool, string) {
			s, err := eval[string](me, `(() => { const b = document.getElementById('ctl-chat'), c = b.querySelector('.ctl-badge');
				return window.huddle.unread() + '|' + (c && !c.hidden ? c.textContent : '') + '|' + b.getAttribute('aria-label'); })()`)
			return err == nil && s == "2|2|Chat, 2 unread", s
		})
		// The badge is drawn on the button, over its top right corner.
		waitFor(t, 5*time.Second, "the unread badge on the Chat control at "+v.name, func() (bool, string) {
			s, err := eval[string](me, `(() => { const b = document.getElementById('ctl-chat').getBoundingClientRect(),
				c = document.querySelector('#ctl-chat .ctl-badge').getBoundingClientRect();
				const on = c.width > 0 && c.height > 0 && c.left >= b.left - 4 && c.right <= b.right + 4 && c.top >= b.top - 4 && c.bottom <= b.bottom;
				return on + ' ' + JSON.stringify([b.left, b.top, b.width, b.height, c.left, c.top, c.width, c.height]); })()`)
			return err == nil && strings.HasPrefix(s, "true"), s
		})
		me.shoot(t, dir, "chat-unread-"+v.name+".png")
		me.mustDo(10*time.Second, "open the chat", chromedp.Click(chromedp.ID("ctl-chat")))
		waitFor(t, 10*time.Second, "the chat open, read, with bob's messages", func() (bool, string) {
			s, err := eval[string](me, `(() => { const p = document.getElementById('chat-panel'), c = document.querySelector('#ctl-chat .ctl-badge');
				return [!p.hidden && p.getBoundingClientRect().width > 0, window.huddle.unread(), !!c && !c.hidden,
					document.getElementById('ctl-chat').getAttribute('aria-pressed'), p.querySelectorAll('.chat-list li').length].join('|'); })()`)
			return err == nil && s == fmt.Sprintf("true|0|false|true|%d", 2*k+2), s
		})
		rep := checkLayout(t, me, "9 participants with the chat open at "+v.name, 9)
		if v.mobile {
			// On a phone the chat covers the stage, inside the window.
			if w, err := eval[float64](me, `document.getElementById('chat-panel').getBoundingClientRect().right`); err != nil || w > float64(v.w) {
				t.Errorf("chat panel at %s ends at x=%.0f (%v)", v.name, w, err)
			}
		} else if rep.Stage.W > full.Stage.W-200 {
			t.Errorf("with the chat open the stage is %.0f px wide, %.0f without: the chat takes no column", rep.Stage.W, full.Stage.W)
		}
		me.shoot(t, dir, "chat-"+v.name+".png")
		me.mustDo(10*time.Second, "close the chat", chromedp.Click(chromedp.ID("ctl-chat")))
	}
	me.setViewport(t, viewports[0])
	// The C shortcut opens it too, and the panel's own Close shuts it.
	open, err := eval[bool](me, `(document.dispatchEvent(new KeyboardEvent('keydown', {key: 'c', bubbles: true})),
		!document.getElementById('chat-panel').hidden)`)
	if err != nil || !open {
		t.Errorf("the C key did not open the chat (%v)", err)
	}
	me.mustDo(10*time.Second, "close the chat from the panel", chromedp.Click(chromedp.CSS(`#chat-panel .chat-toggle`)))
	waitFor(t, 10*time.Second, "the stage to take the chat's place", func() (bool, string) {
		rep, err := eval[layoutReport](me, layoutJS)
		hidden, _ := eval[bool](me, `document.getElementById('chat-panel').hidden`)
		return err == nil && hidden && rep.Stage.W >= full.Stage.W-1, fmt.Sprintf("%+v hidden=%v", rep.Stage, hidden)
	})
}
