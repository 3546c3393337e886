package sdk_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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
	rooms := make([]*sdk.Room, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rooms[i], errs[i] = sdk.Join(ctx, srv.URL(), mintToken(t, srv, fmt.Sprintf("bot%d", i), "rush", protocol.Grants{Subscribe: true}), sdk.Options{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("bot%d: %v", i, err)
		}
		defer rooms[i].Leave()
	}
	waitFor(t, "every bot to know the other 39", 20*time.Second, func() bool {
		for _, r := range rooms {
			if len(r.Participants()) != n-1 {
				return false
			}
		}
		return true
	})
}
