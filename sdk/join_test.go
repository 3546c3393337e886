package sdk_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Bots joining one room all at once all get in, and each ends up knowing
// everyone else: room events that overtake a bot's joined message (the
// server may send another's participantJoined first) are not lost.
func TestConcurrentJoins(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 40
	rooms := joinAtOnce(t, ctx, srv, n, "rush")
	waitFor(t, "every bot to know the other 39", 20*time.Second, func() bool {
		for _, r := range rooms {
			if len(r.Participants()) != n-1 {
				return false
			}
		}
		return true
	})
}

// More bots than the server's per-address join burst, joining at once from
// one machine (a load generator's case): the server answers the extra ones
// 429 with Retry-After, and they wait as told and get in. The rate is
// shrunk (2 a second, burst 2) so that the test takes seconds; the wait is
// the server's real Retry-After.
func TestJoinsPastTheJoinRateWaitAndGetIn(t *testing.T) {
	srv := startServerWith(t, func(c *node.Config) {
		c.Signaling.JoinRate, c.Signaling.JoinBurst = 2, 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	joinAtOnce(t, ctx, srv, 8, "queue")
}

// joinAtOnce joins n subscribing bots to room all at once; every join must
// succeed. They leave when the test ends.
func joinAtOnce(t *testing.T, ctx context.Context, srv *node.Node, n int, room string) []*sdk.Room {
	t.Helper()
	rooms := make([]*sdk.Room, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rooms[i], errs[i] = sdk.Join(ctx, srv.URL(), mintToken(t, srv, fmt.Sprintf("bot%d", i), room, protocol.Grants{Subscribe: true}), sdk.Options{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("bot%d: %v", i, err)
		}
		r := rooms[i]
		t.Cleanup(func() { r.Leave() })
	}
	return rooms
}
