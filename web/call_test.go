package web_test

// End-to-end tests: real chromium processes open the real page served by a
// real Huddle server on 127.0.0.1, and join by typing into the form.

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/turn"
)

// startServer runs a Huddle server in dev mode (no API keys) on loopback.
func startServer(t *testing.T) *node.Node {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith is startServer with a chance to change the config.
func startServerWith(t *testing.T, configure func(*node.Config)) *node.Node {
	t.Helper()
	logs := &logBuffer{}
	level := slog.LevelInfo
	if os.Getenv("HUDDLE_TEST_DEBUG") != "" {
		level = slog.LevelDebug // Pion's own chatter too
	}
	cfg := node.Config{
		HTTPAddr:     "127.0.0.1:0",
		MediaUDPAddr: "127.0.0.1:0",
		MediaTCPAddr: "127.0.0.1:0",
		DataDir:      t.TempDir(),
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})),
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := node.New(cfg)
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		cancel()
		t.Fatalf("server start: %v", err)
	}
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if t.Failed() {
			t.Logf("--- server log ---\n%s", logs.String())
		}
	})
	return srv
}

// TestTwoBrowsersSeeEachOther: two people, each in their own browser
// profile, type their names and the same room into the page and click Join.
// Each must decode the other's video, with the frame count growing, and show
// the other's name on the tile that plays it. When one leaves, the other's
// page drops the tile.
func TestTwoBrowsersSeeEachOther(t *testing.T) {
	srv := startServer(t)
	start := time.Now()

	alice := newBrowser(t, "alice")
	alice.dumpLogsOnFailure()
	bob := newBrowser(t, "bob")
	bob.dumpLogsOnFailure()

	room := "standup"
	aliceID := joinByTyping(t, alice, srv.URL()+"/", "Alice", room)
	bobID := joinByTyping(t, bob, srv.URL()+"/", "Bob", room)
	if aliceID == bobID {
		t.Fatalf("both participants got id %q", aliceID)
	}

	// Both streams flow at once; waiting for one and then the other costs
	// nothing, and keeps t.Fatal on the test goroutine.
	aliceSaw := waitVideoFlowing(t, alice, bobID, "Bob")
	bobSaw := waitVideoFlowing(t, bob, aliceID, "Alice")
	t.Logf("alice decodes bob: %+v; bob decodes alice: %+v (%.1fs after start)", aliceSaw, bobSaw, time.Since(start).Seconds())

	waitTile(t, alice, bobID, "Bob")
	waitTile(t, bob, aliceID, "Alice")
	for _, b := range []*browser{alice, bob} {
		info, err := eval[map[string]struct{ State string }](b, `window.huddle.iceInfo()`)
		if err != nil || info["publisher"].State != "connected" || info["subscriber"].State != "connected" {
			t.Errorf("%s: iceInfo %+v %v, want both PeerConnections connected", b.name, info, err)
		}
	}

	// Each sees themselves too, marked as the local tile.
	for _, c := range []struct {
		b    *browser
		id   string
		name string
	}{{alice, aliceID, "Alice (you)"}, {bob, bobID, "Bob (you)"}} {
		ts, err := tiles(c.b)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 2 || ts[0].ID != c.id || !ts[0].Local || ts[0].Name != c.name || ts[0].VideoWidth == 0 {
			t.Errorf("%s: tiles %+v, want own tile %q first with local video, then the other", c.b.name, ts, c.name)
		}
	}
	alice.screenshot("two-person-call-alice.png")
	bob.screenshot("two-person-call-bob.png")

	for _, b := range []*browser{alice, bob} {
		if p := b.problems(); len(p) > 0 {
			t.Errorf("%s: page logged problems during the call:\n%s", b.name, strings.Join(p, "\n"))
		}
		if e, err := eval[*string](b, `window.huddle.lastError`); err != nil || e != nil {
			t.Errorf("%s: window.huddle.lastError = %q (%v), want null after a clean call", b.name, deref(e), err)
		}
	}

	// Bob leaves with the button; Alice's page drops his tile.
	bob.mustDo(10*time.Second, "click leave", chromedp.Click(chromedp.ID("leave")))
	waitState(t, bob, "left")
	waitFor(t, 15*time.Second, "alice to drop bob's tile", func() (bool, string) {
		ts, err := tiles(alice)
		if err != nil {
			return false, err.Error()
		}
		for _, tl := range ts {
			if tl.ID == bobID {
				return false, fmt.Sprintf("%+v", ts)
			}
		}
		return true, ""
	})

	// Bob changes his mind and joins again from the same page (the form
	// kept his name and room): a new session, and video flows again.
	bob.mustDo(10*time.Second, "click join again", chromedp.Click(chromedp.ID("join"), chromedp.NodeVisible))
	waitState(t, bob, "joined")
	bobAgain, err := eval[string](bob, `window.huddle.participantId`)
	if err != nil || bobAgain == "" || bobAgain == bobID {
		t.Fatalf("bob rejoined as %q (%v), want a new participant id (was %q)", bobAgain, err, bobID)
	}
	waitVideoFlowing(t, alice, bobAgain, "Bob")
	waitVideoFlowing(t, bob, aliceID, "Alice")
	waitTile(t, alice, bobAgain, "Bob")
}

// TestBadTokenShowsError: a token the server refuses must end in a clear
// error on the page, not a spinner.
func TestBadTokenShowsError(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t, "mallory")
	b.dumpLogsOnFailure()
	b.mustDo(20*time.Second, "open the page with a bad token",
		chromedp.Navigate(srv.URL()+"/?token=not.a.jwt"),
		chromedp.WaitVisible(chromedp.ID("join")),
		chromedp.Click(chromedp.ID("join")),
	)
	waitState(t, b, "error")
	msg, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID("error"), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("error box not visible: %v", err)
	}
	if !strings.Contains(msg, "refused the access token") {
		t.Errorf("error box says %q, want it to say the token was refused", msg)
	}
	t.Logf("page shows: %s", msg)
	b.screenshot("bad-token.png")
}

// TestJoinWithoutMedia: ?nomedia=1 joins with no camera or microphone; the
// data channels still open, the page still receives others' video, and the
// others see a tile with the name.
func TestJoinWithoutMedia(t *testing.T) {
	srv := startServer(t)
	viewer := newBrowser(t, "viewer")
	viewer.dumpLogsOnFailure()
	cam := newBrowser(t, "cam")
	cam.dumpLogsOnFailure()

	viewerID := joinByTyping(t, viewer, srv.URL()+"/?nomedia=1", "Viewer", "lecture")
	camID := joinByTyping(t, cam, srv.URL()+"/", "Cam", "lecture")

	// The page's part: both channels are negotiated on the publisher PC and
	// open. (Whether the server keeps them open is the server's business.)
	waitFor(t, 20*time.Second, "viewer's data channels to open", func() (bool, string) {
		ch, err := eval[map[string]struct {
			State  string `json:"state"`
			Opened bool   `json:"opened"`
		}](viewer, `window.huddle.channels()`)
		return err == nil && ch["collab"].Opened && ch["cursors"].Opened, fmt.Sprintf("%+v %v", ch, err)
	})
	waitVideoFlowing(t, viewer, camID, "Cam")
	waitFor(t, 15*time.Second, "cam to show the viewer's tile", func() (bool, string) {
		ts, err := tiles(cam)
		if err != nil {
			return false, err.Error()
		}
		for _, tl := range ts {
			if tl.ID == viewerID {
				return tl.Name == "Viewer", fmt.Sprintf("%+v", ts)
			}
		}
		return false, fmt.Sprintf("%+v", ts)
	})
}

// TestBotAndBrowserSeeEachOther: a Go SDK bot publishing video and a person
// in the page see each other (see botAndBrowserSeeEachOther).
func TestBotAndBrowserSeeEachOther(t *testing.T) {
	srv := startServer(t)
	botAndBrowserSeeEachOther(t, srv.URL())
}

// TestInvitationToken: with ?token= the page joins with that token, and
// shows the token's name and room, locked, instead of asking for them.
func TestInvitationToken(t *testing.T) {
	srv := startServer(t)
	token := devToken(t, srv.URL(), "Dora", "invite")
	b := newBrowser(t, "dora")
	b.dumpLogsOnFailure()
	b.mustDo(20*time.Second, "open the invitation",
		chromedp.Navigate(srv.URL()+"/?token="+url.QueryEscape(token)),
		chromedp.WaitVisible(chromedp.ID("join")),
	)
	form, err := eval[map[string]any](b, `({name: document.getElementById('name').value, room: document.getElementById('room').value,
		locked: document.getElementById('name').readOnly && document.getElementById('room').readOnly})`)
	if err != nil || form["name"] != "Dora" || form["room"] != "invite" || form["locked"] != true {
		t.Errorf("form %v (%v), want name Dora and room invite from the token, read-only", form, err)
	}
	b.mustDo(10*time.Second, "click join", chromedp.Click(chromedp.ID("join")))
	waitState(t, b, "joined")
	if room, err := eval[string](b, `window.huddle.room`); err != nil || room != "invite" {
		t.Errorf("joined room %q (%v), want invite", room, err)
	}
}

// TestRelayOnlyBrowser: a person whose page may only use TURN relays
// (?relay=1, as behind a UDP-blocking firewall) still sees and is seen,
// through the embedded relay with the credentials handed out at join; the
// selected ICE pairs prove the media went through the relay.
func TestRelayOnlyBrowser(t *testing.T) {
	srv := startServerWith(t, func(c *node.Config) {
		c.TURN = &turn.Config{
			UDPAddr:     "127.0.0.1:0",
			TCPAddr:     "127.0.0.1:0",
			RelayBindIP: netip.MustParseAddr("127.0.0.1"),
		}
	})
	relayed := newBrowser(t, "relayed")
	relayed.dumpLogsOnFailure()
	direct := newBrowser(t, "direct")
	direct.dumpLogsOnFailure()
	relayedID := joinByTyping(t, relayed, srv.URL()+"/?relay=1", "Rita", "firewall")
	directID := joinByTyping(t, direct, srv.URL()+"/", "Dan", "firewall")

	waitVideoFlowing(t, relayed, directID, "Dan")
	waitVideoFlowing(t, direct, relayedID, "Rita")

	type ice struct {
		State string `json:"state"`
		Local string `json:"local"`
	}
	for _, c := range []struct {
		b    *browser
		want string
	}{{relayed, "relay"}, {direct, "host"}} {
		info, err := eval[map[string]ice](c.b, `window.huddle.iceInfo()`)
		if err != nil {
			t.Fatal(err)
		}
		for _, pc := range []string{"publisher", "subscriber"} {
			if info[pc].State != "connected" || info[pc].Local != c.want {
				t.Errorf("%s: %s PC %+v, want connected over a %s candidate", c.b.name, pc, info[pc], c.want)
			}
		}
	}
}

// TestNoDevTokensInProduction: a server with API keys hands out no dev
// tokens; a person who types a name and room must be told why joining
// failed, in words from the server.
func TestNoDevTokensInProduction(t *testing.T) {
	srv := startServerWith(t, func(c *node.Config) {
		c.APIKeys = auth.Keys{"APIprod": "a-long-enough-production-secret-for-hs256"}
	})
	b := newBrowser(t, "visitor")
	b.dumpLogsOnFailure()
	b.mustDo(20*time.Second, "join by typing",
		chromedp.Navigate(srv.URL()+"/"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Vic"),
		chromedp.SendKeys(chromedp.ID("room"), "prod"),
		chromedp.Click(chromedp.ID("join")),
	)
	waitState(t, b, "error")
	msg, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID("error"), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("error box not visible: %v", err)
	}
	if !strings.Contains(msg, "HTTP 404") || !strings.Contains(msg, "dev mode") || !strings.Contains(msg, "invitation link") {
		t.Errorf("error box says %q, want the HTTP status, the server's reason and a hint to use an invitation link", msg)
	}
}

// TestServerGoneShowsReconnecting: when the server goes away mid-call the
// page says it is reconnecting (and keeps trying), instead of showing
// frozen video.
func TestServerGoneShowsReconnecting(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t, "eve")
	b.dumpLogsOnFailure()
	joinByTyping(t, b, srv.URL()+"/", "Eve", "doomed")
	if err := srv.Close(); err != nil {
		t.Logf("server close: %v", err)
	}
	waitState(t, b, "reconnecting")
	msg, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID("notice"), chromedp.NodeVisible))
	if err != nil || !strings.Contains(msg, "reconnecting") {
		t.Errorf("notice says %q (%v), want it to say the page is reconnecting", msg, err)
	}
}
