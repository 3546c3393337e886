package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/node"
)

type presenceInfo struct {
	State        string `json:"state"`
	Reconnecting bool   `json:"reconnecting"`
}

type chatInfo struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// TestBrowserResumesAfterSignalingDrop: the page's WebSocket is cut and
// cannot reconnect for a while; the others see it reconnecting; when the
// network is back the page resumes by itself with the same participant id,
// gets the chat sent meanwhile exactly once, and its video keeps reaching
// the others from the same tracks.
func TestBrowserResumesAfterSignalingDrop(t *testing.T) {
	call := startGatedCall(t, "resume")
	g, alice, bob, aliceID := call.gate, call.alice, call.bob, call.aliceID
	g.Cut()
	waitFor(t, 30*time.Second, "bob to see alice reconnecting", func() (bool, string) {
		p, err := eval[*presenceInfo](bob, fmt.Sprintf(`window.huddle.presenceOf(%q)`, aliceID))
		return err == nil && p != nil && p.Reconnecting, fmt.Sprintf("%+v %v", p, err)
	})
	waitState(t, alice, "reconnecting")
	for i := 0; i < 2; i++ {
		if _, err := eval[string](bob, fmt.Sprintf(`window.huddle.sendChat("while away %d")`, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 15*time.Second, "bob's chat to be stored", func() (bool, string) {
		c, err := eval[[]chatInfo](bob, `window.huddle.chat()`)
		return err == nil && len(c) == 2, fmt.Sprintf("%+v %v", c, err)
	})
	g.Open()

	call.waitResumed(t, call.before)
	waitFor(t, 20*time.Second, "alice to get the missed chat once", func() (bool, string) {
		c, err := eval[[]chatInfo](alice, `window.huddle.chat()`)
		return err == nil && len(c) == 2 && c[0].Text == "while away 0" && c[1].Text == "while away 1", fmt.Sprintf("%+v %v", c, err)
	})
	// Chat still works both ways on the resumed socket; bob, with his chat
	// panel hidden, counts it unread.
	if _, err := eval[bool](bob, `(document.querySelector('.chat-toggle').click(), true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := eval[string](alice, `window.huddle.sendChat("back")`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "bob to get alice's chat", func() (bool, string) {
		c, err := eval[[]chatInfo](bob, `window.huddle.chat()`)
		return err == nil && len(c) == 3 && c[2].Text == "back", fmt.Sprintf("%+v %v", c, err)
	})
	if n, err := eval[int](bob, `window.huddle.unread()`); err != nil || n != 1 {
		t.Errorf("bob's unread count with the chat hidden: %d (%v), want 1", n, err)
	}
}

// TestReloadRejoins: the page keeps the room in its URL and its token for
// the tab, so a reload joins the same room again by itself, as the same
// identity (the old participant is replaced, not left behind).
func TestReloadRejoins(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t, "rita")
	b.dumpLogsOnFailure()
	first := joinByTyping(t, b, srv.URL()+"/", "Rita", "sticky")
	loc, err := eval[string](b, `window.location.search`)
	if err != nil || !strings.Contains(loc, "room=sticky") {
		t.Fatalf("URL after joining: %q (%v), want the room in it", loc, err)
	}
	b.mustDo(20*time.Second, "reload", chromedp.Reload())
	waitState(t, b, "joined")
	id, err := eval[string](b, `window.huddle.participantId`)
	if err != nil || id == "" || id == first {
		t.Fatalf("after the reload: participant %q (%v), first was %q", id, err, first)
	}
	if room, _ := eval[string](b, `window.huddle.room`); room != "sticky" {
		t.Errorf("after the reload the page is in room %q", room)
	}
	waitFor(t, 15*time.Second, "one participant on the server", func() (bool, string) {
		var h struct{ Participants int }
		resp, err := http.Get(srv.URL() + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&h)
		return h.Participants == 1, fmt.Sprint(h.Participants, " participants")
	})
}

// TestServerRestartPageRejoins: a server restarted on the same address
// does not know the page's session; the page, reconnecting by itself,
// joins afresh (a new participant id) and its media flows again.
func TestServerRestartPageRejoins(t *testing.T) {
	start := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }
	dir := t.TempDir()
	first := startServerWith(t, func(c *node.Config) { c.DataDir = dir })
	addr := strings.TrimPrefix(first.URL(), "http://")
	b := newBrowser(t, "rex")
	b.dumpLogsOnFailure()
	id := joinByTyping(t, b, first.URL()+"/", "Rex", "phoenix")
	watcher := newBrowser(t, "wendy")
	watcher.dumpLogsOnFailure()
	step("closing")
	if err := first.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	step("closed")
	waitState(t, b, "reconnecting")
	step("reconnecting")
	second := startServerWith(t, func(c *node.Config) { c.DataDir = dir; c.HTTPAddr = addr })
	step("restarted")
	waitState(t, b, "joined")
	step("rejoined")
	newID, err := eval[string](b, `window.huddle.participantId`)
	if err != nil || newID == "" || newID == id {
		t.Fatalf("after the restart: participant %q (%v), was %q", newID, err, id)
	}
	wendy := joinByTyping(t, watcher, second.URL()+"/", "Wendy", "phoenix")
	step("wendy joined")
	waitVideoFlowing(t, watcher, newID, "Rex")
	step("wendy sees rex")
	waitVideoFlowing(t, b, wendy, "Wendy")
	step("rex sees wendy")
	t.Cleanup(func() { step("cleanup done") })
}

// TestPageGoesAwayWhenIdle: with nobody touching it for the configured
// time (?away=1: one second), the page says it is away, with a last seen
// time, and the others see it; a custom status reaches them too.
func TestPageGoesAwayWhenIdle(t *testing.T) {
	srv := startServer(t)
	idle := newBrowser(t, "ida")
	idle.dumpLogsOnFailure()
	other := newBrowser(t, "otto")
	other.dumpLogsOnFailure()
	idaID := joinByTyping(t, idle, srv.URL()+"/?away=1&nomedia=1", "Ida", "quiet")
	joinByTyping(t, other, srv.URL()+"/?nomedia=1", "Otto", "quiet")
	type presence struct {
		State    string `json:"state"`
		Status   string `json:"status"`
		LastSeen int64  `json:"lastSeen"`
	}
	waitFor(t, 20*time.Second, "otto to see ida away", func() (bool, string) {
		p, err := eval[*presence](other, fmt.Sprintf(`window.huddle.presenceOf(%q)`, idaID))
		return err == nil && p != nil && p.State == "away" && p.LastSeen > 0, fmt.Sprintf("%+v %v", p, err)
	})
	if _, err := eval[bool](idle, `(window.huddle.setStatus('reading 📚'), true)`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "otto to see ida's status", func() (bool, string) {
		p, err := eval[*presence](other, fmt.Sprintf(`window.huddle.presenceOf(%q)`, idaID))
		return err == nil && p != nil && p.Status == "reading 📚", fmt.Sprintf("%+v %v", p, err)
	})
}
