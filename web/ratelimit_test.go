package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// floodJS keeps the page's signaling socket and counts the publisher offers
// the server drops for the message rate (rate_limited, ref offer). For ms
// after __huddleFlood(ms), every publisher offer the page sends goes right
// after 300 pings, which spend the connection's allowance (burst 200, 50 a
// second) so that the server drops the offer. (Pings sent from a timer did
// not: the page's own work delays the timer, the allowance refills
// meanwhile, and the offer, sent as that work ends, got through.)
const floodJS = `(() => {
  const Real = window.WebSocket;
  window.__offerDrops = 0;
  window.__offersSent = 0;
  window.__floodUntil = 0;
  window.WebSocket = class extends Real {
    constructor(...args) {
      super(...args);
      window.__huddleSocket = this;
      const send = this.send.bind(this);
      this.send = (data) => {
        if (typeof data === 'string' && data.includes('"type":"offer"') && data.includes('"target":"publisher"')) {
          window.__offersSent++;
          if (Date.now() < window.__floodUntil) for (let i = 0; i < 300; i++) send('{"type":"ping","id":"flood"}');
        }
        return send(data);
      };
      this.addEventListener('message', (ev) => {
        try {
          const m = JSON.parse(ev.data);
          if (m.type === 'error' && m.code === 'rate_limited' && m.ref === 'offer') window.__offerDrops++;
        } catch { /* not ours to judge */ }
      });
    }
  };
  window.__huddleFlood = (ms) => { window.__floodUntil = Date.now() + ms; window.__offersSent = 0; return true; };
})();`

// TestDroppedOfferIsSentAgain: Alice's page sends far more than its message
// rate just as she starts a screen share, so the server drops the offer
// that carries the share (and tells her, rate_limited with ref offer). The
// page keeps the offer and sends it again a second later, quietly, once a
// second while the flood lasts, and Bob gets the share. (The page used to
// roll the offer back as if refused, and the share never went out.)
func TestDroppedOfferIsSentAgain(t *testing.T) {
	srv := startServer(t)
	alice := newBrowser(t, "alice", chromedp.Flag("auto-select-desktop-capture-source", "Entire screen"))
	alice.dumpLogsOnFailure()
	bob := newBrowser(t, "bob")
	bob.dumpLogsOnFailure()
	if err := alice.do(10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: floodJS})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	const room = "flood"
	aliceID := joinByTyping(t, alice, srv.URL()+"/", "Alice", room)
	joinByTyping(t, bob, srv.URL()+"/?nomedia=1", "Bob", room)
	waitVideoFlowing(t, bob, aliceID, "Alice")

	const flood = 3 * time.Second
	if ok, err := eval[bool](alice, fmt.Sprintf(`window.__huddleFlood(%d)`, flood.Milliseconds())); err != nil || !ok {
		t.Fatalf("start the flood: %v %v", ok, err)
	}
	alice.mustDo(10*time.Second, "click share", chromedp.Click(chromedp.ID("ctl-share")))
	waitFor(t, 15*time.Second, "the server to drop alice's offer", func() (bool, string) {
		n, err := eval[int](alice, `window.__offerDrops`)
		return err == nil && n > 0, fmt.Sprintf("%d dropped, %v", n, err)
	})
	screenID := aliceID + ":screen"
	waitFor(t, 30*time.Second, "bob to show alice's screen", func() (bool, string) {
		v := shareViewOf(t, bob, screenID)
		return v.Screen && v.Width > 0, fmt.Sprintf("%+v", v)
	})
	drops, err := eval[int](alice, `window.__offerDrops`)
	if err != nil {
		t.Fatal(err)
	}
	// One offer a second while the flood lasts, and the one it began with.
	if max := int(flood/time.Second) + 2; drops > max {
		t.Errorf("%d offers dropped in a %v flood, want at most %d: the page offered again without waiting", drops, flood, max)
	}
	if e, _ := eval[*string](alice, `window.huddle.lastError`); e != nil && strings.Contains(*e, "offer") {
		t.Errorf("alice was shown %q for an offer that was only dropped and sent again", *e)
	}
	sent, _ := eval[int](alice, `window.__offersSent`)
	if sent != drops+1 {
		t.Errorf("%d publisher offers sent since the flood began, %d dropped: want every one dropped but the last", sent, drops)
	}
	t.Logf("%d publisher offers sent, %d dropped by the rate limit during the %v flood", sent, drops, flood)
}
