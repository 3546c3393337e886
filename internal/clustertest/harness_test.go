package clustertest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// The harness itself, without Redis: nodes start, the balancer spreads
// connections over them and skips a killed one, a stopped node is seen as
// down by the health check, and a restarted node serves again on the same
// address.
func TestHarnessNodesAndBalancer(t *testing.T) {
	c := Start(t, Options{Nodes: 2, NoRedis: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	join := func(id string) *sdk.Room {
		r, err := sdk.Join(ctx, c.URL(), c.Token(id, "harness"), sdk.Options{NoAutoReconnect: true})
		if err != nil {
			t.Fatalf("%s joins through the balancer: %v", id, err)
		}
		t.Cleanup(func() { r.Leave() })
		return r
	}
	join("a")
	join("b")
	picks := c.LB.Picks()
	if picks[c.Nodes[0].HTTPAddr] == 0 || picks[c.Nodes[1].HTTPAddr] == 0 {
		t.Errorf("round robin sent nothing to one node: %v", picks)
	}
	if got := c.Nodes[0].Log().Records("joined"); len(got) == 0 {
		t.Errorf("n1 logged no join:\n%s", c.Nodes[0].log.tail(20))
	}

	c.Nodes[0].Kill()
	if c.Nodes[0].Running() {
		t.Fatal("n1 runs after Kill")
	}
	before := c.LB.Picks()[c.Nodes[1].HTTPAddr]
	join("c")
	join("d")
	if got := c.LB.Picks()[c.Nodes[1].HTTPAddr] - before; got < 2 {
		t.Errorf("with n1 dead, %d of the next connections reached n2", got)
	}

	c.Nodes[1].Stop()
	WaitFor(t, 10*time.Second, func() string { return "the balancer to mark stopped n2 down" }, func() bool {
		c.LB.mu.Lock()
		defer c.LB.mu.Unlock()
		return c.LB.down[c.Nodes[1].HTTPAddr]
	})
	c.Nodes[1].Cont()
	c.Nodes[0].Restart()
	if c.Nodes[0].Health() == nil {
		t.Error("restarted n1 does not answer /healthz")
	}
}

func TestParseRecord(t *testing.T) {
	r, ok := ParseRecord(`time=2026-11-30T16:11:55.123Z level=INFO msg="room held" room=r1 epoch=7 note="a \"q\" b"`)
	if !ok || r.Msg != "room held" || r.Attr("room") != "r1" || r.Int("epoch") != 7 || r.Attr("note") != `a "q" b` || r.Time.Nanosecond() != 123e6 {
		t.Fatalf("%+v %v", r, ok)
	}
	if _, ok := ParseRecord("  Huddle is running: open http://x"); ok {
		t.Error("banner parsed as a record")
	}
}
