package clustertest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// reconnectWindow is the window over which the SDK spreads the first
// reconnect attempts after the room's node goes away (docs/CLUSTER.md).
const reconnectWindow = protocol.ReconnectSpread

// spreadBots is how many bots reconnect at once in the spread test.
const spreadBots = 200

// 200 bots in one room (signaling and the documents' data channels, no
// media: 200 publishers' video would not fit on two shared cores) lose
// the room's node: their rejoins, as the surviving nodes log them, are
// spread over the SDK's reconnect window instead of arriving in one storm.
// The assertion is on the spread of the servers' join timestamps, never on
// how long anything took.
func TestHeavyReconnectSpread200Bots(t *testing.T) {
	if testing.Short() {
		t.Skip("200 bots: not in -short")
	}
	// The per-address join limit would throttle 200 clients that all come
	// from 127.0.0.1; real clients come from many addresses.
	c := Start(t, Options{Nodes: 3, Args: []string{"--joins-per-second", "-1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const room = "spread"

	// The first bot places the room; the rest join through the balancer.
	bots := make([]*sdk.Room, spreadBots)
	first := joinBot(t, ctx, c, c.URL(), "s000", room, false)
	bots[0] = first.room
	var wg sync.WaitGroup
	errs := make(chan error, spreadBots)
	next := make(chan int, spreadBots)
	for i := 1; i < spreadBots; i++ {
		next <- i
	}
	close(next)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r, err := sdk.Join(ctx, c.URL(), c.Token(fmt.Sprintf("s%03d", i), room), sdk.Options{Logger: botLogger()})
				if err != nil {
					errs <- fmt.Errorf("bot %d joins: %w", i, err)
					continue
				}
				bots[i] = r
			}
		}()
	}
	wg.Wait()
	close(errs)
	for _, r := range bots {
		if r != nil {
			t.Cleanup(func() { r.Leave() })
		}
	}
	for err := range errs {
		t.Fatal(err)
	}
	old, rec := (&call{t: t, c: c, room: room}).ownerNode(ctx)
	WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("%d participants on %s", spreadBots, old.Name) }, func() bool {
		r, err := old.Admin().GetRoom(ctx, room)
		return err == nil && len(r.Participants) == spreadBots
	})

	marks := map[*Node]int{}
	for _, n := range c.Nodes {
		marks[n] = n.log.Len()
	}
	t.Logf("killing %s, the owner of %s at epoch %d, with %d participants", old.Name, room, rec.Epoch, spreadBots)
	old.Kill()

	var joins []Record
	WaitFor(t, 2*time.Minute, func() string {
		return fmt.Sprintf("%d rejoins on the surviving nodes, have %d", spreadBots, len(joins))
	}, func() bool {
		joins = rejoins(c, marks, old, room)
		return len(joins) >= spreadBots
	})
	for _, r := range bots {
		if r.Err() != nil {
			t.Errorf("a bot gave up: %v", r.Err())
		}
	}
	checkSpread(t, joins, reconnectWindow)
}

// rejoins returns the first "joined" record of each identity in room
// logged by the nodes other than dead after their marks.
func rejoins(c *Cluster, marks map[*Node]int, dead *Node, room string) []Record {
	seen := map[string]bool{}
	var out []Record
	for _, n := range c.Nodes {
		if n == dead {
			continue
		}
		for _, line := range n.log.Since(marks[n]) {
			r, ok := ParseRecord(line)
			if !ok || r.Msg != "joined" || r.Attr("room") != room || seen[r.Attr("identity")] {
				continue
			}
			seen[r.Attr("identity")] = true
			r.Node = n.Name
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// checkSpread asserts the rejoins are spread: no 100 ms bucket holds more
// than a fifth of them (a uniform spread over the 2 s window puts a
// twentieth in each; the servers' own pauses bunch a few), and the middle 90% span at
// least half the window. A storm (everyone within a few hundred
// milliseconds) fails both.
func checkSpread(t testing.TB, joins []Record, window time.Duration) {
	t.Helper()
	if len(joins) == 0 {
		t.Fatal("no rejoins")
	}
	t0 := joins[0].Time
	buckets := map[int]int{}
	worst, worstAt := 0, 0
	for _, r := range joins {
		b := int(r.Time.Sub(t0) / (100 * time.Millisecond))
		buckets[b]++
		if buckets[b] > worst {
			worst, worstAt = buckets[b], b
		}
	}
	p5 := joins[len(joins)*5/100].Time
	p95 := joins[len(joins)*95/100].Time
	span := joins[len(joins)-1].Time.Sub(t0)
	var hist strings.Builder
	for b := 0; b <= int(span/(100*time.Millisecond)); b++ {
		fmt.Fprintf(&hist, "%d ", buckets[b])
	}
	t.Logf("%d rejoins over %v (p5-p95 %v); busiest 100 ms bucket %d (at +%dms); per 100 ms: %s",
		len(joins), span, p95.Sub(p5), worst, worstAt*100, hist.String())
	if limit := len(joins) / 5; worst > limit {
		t.Errorf("%d rejoins in one 100 ms bucket (at +%dms), more than %d: a reconnect storm", worst, worstAt*100, limit)
	}
	if p95.Sub(p5) < window/2 {
		t.Errorf("the middle 90%% of rejoins span %v, less than half the %v reconnect window", p95.Sub(p5), window)
	}
}
