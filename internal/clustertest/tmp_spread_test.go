package clustertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
)

func TestTmpSpreadSingleNode(t *testing.T) {
	c := Start(t, Options{Nodes: 1, NoRedis: true, Args: []string{"--joins-per-second", "-1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const room = "spread"
	bots := make([]*sdk.Room, spreadBots)
	var wg sync.WaitGroup
	next := make(chan int, spreadBots)
	for i := 0; i < spreadBots; i++ {
		next <- i
	}
	close(next)
	start := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r, err := sdk.Join(ctx, c.URL(), c.Token(fmt.Sprintf("s%03d", i), room), sdk.Options{Logger: botLogger()})
				if err != nil {
					t.Error(err)
					continue
				}
				bots[i] = r
				t.Cleanup(func() { r.Leave() })
			}
		}()
	}
	wg.Wait()
	t.Logf("200 joined in %v", time.Since(start))
	marks := map[*Node]int{c.Nodes[0]: c.Nodes[0].log.Len()}
	c.Nodes[0].Restart()
	var joins []Record
	WaitFor(t, 2*time.Minute, func() string { return fmt.Sprint(len(joins)) }, func() bool {
		joins = rejoins(c, marks, nil, room)
		return len(joins) >= spreadBots
	})
	checkSpread(t, joins, reconnectWindow)
}
