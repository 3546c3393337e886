package signaling_test

import (
	"testing"

	"github.com/huddle-rtc/huddle/internal/metricstest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestDroppedOfferRefused: past the message rate, every dropped publisher
// offer is refused at once with rate_limited and ref "offer" (no answer
// will come for it), even several within a second, and so is a chat
// message (ref "chat": no echo will come for it), while other drops get
// the one throttled error; a malformed message that starts like an offer is a
// plain drop. Every drop counts in the errors metric. The rate is shrunk
// (one message after the join, no refill during the test) since it is what
// the test is about.
func TestDroppedOfferRefused(t *testing.T) {
	n := sdktest.StartWith(t, func(c *node.Config) {
		c.Signaling.MessageRate, c.Signaling.MessageBurst = 0.001, 1
	})
	c := dial(t, n)
	c.join(n, "ann", "r") // takes the one token
	offer := func() {
		c.send(&protocol.Offer{Target: protocol.TargetPublisher, SDP: "v=0\r\n"})
	}
	c.send(&protocol.SetPresence{State: protocol.PresenceAway})
	c.sendRaw(`{"type":"offer","target":"publisher","sdp":"v=0"`) // cut short
	offer()
	c.send(&protocol.SetPresence{State: protocol.PresenceOnline})
	c.sendRaw(`{"target":"publisher","sdp":"v=0","type":"offer"}`)
	c.send(&protocol.Chat{ClientID: "c1", Text: "hello"})
	offer()
	const offers, drops = 3, 7
	refused, chats, plain := 0, 0, 0
	for refused < offers {
		e := waitFor(c, func(e *protocol.Error) bool { return e.Code == protocol.CodeRateLimited })
		switch e.Ref {
		case protocol.TypeOffer:
			refused++
		case protocol.TypeChat:
			chats++
		case "":
			plain++
		default:
			t.Fatalf("rate_limited with ref %q", e.Ref)
		}
	}
	if chats != 1 {
		t.Errorf("%d chat refusals before the last offer's, want 1", chats)
	}
	if plain < 1 {
		t.Error("the first plain drop was not explained by a rate_limited error")
	}
	if got := int(metricstest.Scrape(t, n.URL())[`huddle_signaling_errors_total{code="rate_limited"}`]); got != drops {
		t.Errorf("errors metric counts %d rate_limited, want %d (every drop)", got, drops)
	}
}
