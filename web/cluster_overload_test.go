package web_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

var overloadLine = regexp.MustCompile(`relay overloaded; reconnecting in (\d+) ms \(base (\d+) ms\)`)

// TestClusterPageBacksOffOnOverload: a page relayed by a non-owner node
// whose relay link overflows (a chat message larger than the link's byte
// bound, sent by a bot on the room's node) is closed with 4029, not 4000,
// and reconnects after the overload wait (half to all of 1 s), then after
// twice that when it meets the same overload again (the owner replays the
// message on resume), instead of within the room-moved spread.
func TestClusterPageBacksOffOnOverload(t *testing.T) {
	rs := redistest.Start(t)
	nodes := make([]*node.Node, 2)
	for i := range nodes {
		nodes[i] = startServerWith(t, func(c *node.Config) {
			c.Redis, c.NodeID, c.ClusterLinkQueueBytes = rs.URL(), fmt.Sprintf("n%d", i), 12<<10
		})
	}
	waitFor(t, 15*time.Second, "both nodes to see each other", func() (bool, string) {
		return len(nodes[0].Cluster().Members()) == 2 && len(nodes[1].Cluster().Members()) == 2, ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const room = "overload"
	bot, err := sdk.Join(ctx, nodes[0].URL(), devToken(t, nodes[0].URL(), "Bot", room), sdk.Options{NoAutoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bot.Leave()
	owner, edge := nodes[0], nodes[1]
	if !owner.Signaling().HasRoom(room) {
		owner, edge = nodes[1], nodes[0]
		if bot, err = sdk.Join(ctx, owner.URL(), devToken(t, owner.URL(), "Speaker", room), sdk.Options{NoAutoReconnect: true}); err != nil {
			t.Fatal(err)
		}
		defer bot.Leave()
	}

	alice := newBrowser(t, "alice")
	alice.dumpLogsOnFailure()
	alice.mustDo(20*time.Second, "open the invitation and join",
		chromedp.Navigate(edge.URL()+"/?nomedia=1&token="+url.QueryEscape(devToken(t, edge.URL(), "Alice", room))),
		chromedp.WaitVisible(chromedp.ID("join")),
		chromedp.Click(chromedp.ID("join")),
	)
	waitState(t, alice, "joined")

	if _, err := bot.SendChat(ctx, strings.Repeat("😀", protocol.MaxChatLen)); err != nil {
		t.Fatal(err)
	}
	type wait struct{ in, base int }
	var waits []wait
	waitFor(t, 30*time.Second, "the page to back off twice on overload", func() (bool, string) {
		waits = waits[:0]
		for _, l := range alice.Logs() {
			if m := overloadLine.FindStringSubmatch(l); m != nil {
				in, _ := strconv.Atoi(m[1])
				base, _ := strconv.Atoi(m[2])
				waits = append(waits, wait{in, base})
			}
		}
		return len(waits) >= 2, fmt.Sprint(waits)
	})
	var dropped, moved bool
	for _, l := range alice.Logs() {
		dropped = dropped || strings.Contains(l, "code 4029")
		moved = moved || strings.Contains(l, "code 4000")
	}
	if !dropped || moved {
		t.Errorf("the page's drops: 4029 seen %v, 4000 seen %v; want only 4029", dropped, moved)
	}
	if waits[0].base != 1000 || waits[1].base != 2000 {
		t.Errorf("overload backoff bases %d then %d ms, want 1000 then 2000", waits[0].base, waits[1].base)
	}
	for _, w := range waits[:2] {
		if w.in < w.base/2 || w.in > w.base {
			t.Errorf("reconnect wait %d ms for base %d: want within [%d, %d]", w.in, w.base, w.base/2, w.base)
		}
	}
}
