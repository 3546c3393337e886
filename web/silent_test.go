package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/internal/metricstest"
	"github.com/huddle-rtc/huddle/node"
)

// silentServerLine is what the page logs when its watchdog gives up on a
// server that said nothing (keepalive.js, through meeting.js's lost()).
const silentServerLine = "no word from the server"

// TestPageResumesWhenServerGoesSilent: the page's signaling goes through a
// TCP gate; once in a call, the gate stops forwarding the page's open
// connections both ways without closing them (a path that died without a
// reset). With the production timings (ping after 10 s of silence, dead
// after 15 s) the page takes the socket for dead by itself, reconnects
// through a new connection and resumes: the same participant, ICE
// restarted, its video still reaching the other from the same track.
func TestPageResumesWhenServerGoesSilent(t *testing.T) {
	call := startGatedCall(t, "silent")
	g, alice, bob, aliceID := call.gate, call.alice, call.bob, call.aliceID
	if n := countLines(alice, silentServerLine); n != 0 {
		t.Fatalf("the page took a live server for silent %d times before the freeze", n)
	}

	accepted := g.Accepted()
	frozeAt := time.Now()
	g.FreezeOpen()
	// The page hears nothing more on its socket, which stays open: only
	// its own watchdog can notice (the server drops it only after 20 s,
	// and could not tell it anyway).
	waitFor(t, 45*time.Second, "alice to take the silent socket for dead", func() (bool, string) {
		n := countLines(alice, silentServerLine)
		return n > 0, fmt.Sprintf("%d lines", n)
	})
	t.Logf("alice gave up on the frozen socket %.1f s after the freeze", time.Since(frozeAt).Seconds())
	mark, _, _ := framesFrom(bob, aliceID)
	call.waitResumed(t, mark)
	if n := g.Accepted(); n <= accepted {
		t.Fatalf("the gate forwarded %d connections, %d before the freeze: alice did not reconnect through it", n, accepted)
	}
	// The new socket carries the room again: a chat from bob reaches alice.
	if _, err := eval[string](bob, `window.huddle.sendChat("still there?")`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "alice to get bob's chat on the new socket", func() (bool, string) {
		c, err := eval[[]chatInfo](alice, `window.huddle.chat()`)
		return err == nil && len(c) > 0 && c[len(c)-1].Text == "still there?", fmt.Sprintf("%+v %v", c, err)
	})
	if n := countLines(alice, silentServerLine); n != 1 {
		t.Errorf("the page gave up on a socket %d times, want once", n)
	}
}

// countLines counts the page's log lines that contain s.
func countLines(b *browser, s string) int {
	n := 0
	for _, l := range b.Logs() {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// TestQuietPageKeepsItsSocket: alone in a room without media, the page
// hears nothing from the server unasked; its pings (every 10 s of silence)
// are answered, so it never takes the live server for dead: after two
// pings the server has seen one join and no reconnect.
func TestQuietPageKeepsItsSocket(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t, "quinn")
	b.dumpLogsOnFailure()
	id := joinByTyping(t, b, srv.URL()+"/?nomedia=1", "Quinn", "quiet-socket")
	waitFor(t, 60*time.Second, "the server to get two pings from the page", func() (bool, string) {
		n := signalingMessages(t, srv, "ping")
		return n >= 2, fmt.Sprintf("%g pings", n)
	})
	if n := countLines(b, silentServerLine); n != 0 {
		t.Errorf("the page took the live server for silent %d times", n)
	}
	if n := signalingMessages(t, srv, "join"); n != 1 {
		t.Errorf("the server saw %g joins, want 1 (no reconnect)", n)
	}
	waitState(t, b, "joined")
	if now, err := eval[string](b, `window.huddle.participantId`); err != nil || now != id {
		t.Errorf("participant %q (%v), was %q", now, err, id)
	}
}

// signalingMessages reads the server's count of received messages of one
// type from /metrics (0 before the first).
func signalingMessages(t *testing.T, srv *node.Node, typ string) float64 {
	t.Helper()
	return metricstest.Scrape(t, srv.URL())[`huddle_signaling_messages_total{type="`+typ+`"}`]
}

// TestWatchdogAsksBeforeGivingUp: a watchdog whose timer fires late (a
// hidden tab's throttling; here the page's main thread is kept busy past
// both thresholds) pings first and gives up only once that ping has gone
// unanswered for the rest of the window; an answer in time keeps it
// alive. The timings are shrunk: the rule is the subject, not the values
// (the production ones are the other tests').
func TestWatchdogAsksBeforeGivingUp(t *testing.T) {
	b := jsPage(t)
	type outcome struct {
		Pings    int     `json:"pings"`
		Dead     bool    `json:"dead"`
		SinceAsk float64 `json:"sinceAsk"` // ms from the ping to the verdict
	}
	run := func(answer bool) outcome {
		t.Helper()
		o, err := eval[outcome](b, fmt.Sprintf(`(async () => {
  const { Watchdog } = await import('/keepalive.js');
  const answer = %v;
  return await new Promise((resolve) => {
    let pings = 0, askedAt = 0;
    const dog = new Watchdog(() => {
      pings++;
      askedAt = performance.now();
      if (answer) setTimeout(() => dog.heard(), 20);
    }, () => resolve({ pings, dead: true, sinceAsk: performance.now() - askedAt }), { pingAfterMs: 200, deadAfterMs: 400 });
    const until = performance.now() + 600;
    while (performance.now() < until) {} // the timers cannot run meanwhile
    if (answer) setTimeout(() => { dog.stop(); resolve({ pings, dead: false, sinceAsk: 0 }); }, 1000);
  });
})()`, answer))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	if o := run(false); !o.Dead || o.Pings != 1 || o.SinceAsk < 200 {
		t.Errorf("unanswered after a late timer: %+v; want dead, after one ping left 200 ms to be answered", o)
	}
	if o := run(true); o.Dead || o.Pings < 1 {
		t.Errorf("answered after a late timer: %+v; want alive, after a ping", o)
	}
}
