package cluster

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/prometheus/client_golang/prometheus"
)

// testTTL is short so expiry tests are quick, and long enough that a busy
// machine (2 cores, many suites) does not expire live nodes.
const testTTL = 1500 * time.Millisecond

func startNode(t testing.TB, srv *redistest.Server, cfg Config) *Node {
	t.Helper()
	cfg.Client = srv.Client()
	if cfg.TTL == 0 {
		cfg.TTL = testTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start node %q: %v", cfg.ID, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crashForTest stops the node the way kill -9 would: goroutines end, its
// member key stays until its TTL runs out. Links are not told.
func (n *Node) crashForTest() {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closing = true
		n.mu.Unlock()
		n.cancel()
		n.pubsub.Close()
		for _, l := range n.links() {
			l.closeLocal(CodeNodeClosing, "crashed", false)
		}
		n.wg.Wait()
		n.met.unregister()
	})
}

// pauseRefreshForTest stops (true) or resumes (false) the refresh loop,
// like a SIGSTOP that spares the relay.
func (n *Node) pauseRefreshForTest(p bool) { n.refreshPaused.Store(p) }

func memberIDs(ms []Member) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// gather sums a metric family's samples whose labels include label
// (name=value, or "" for all).
func gather(t testing.TB, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName()+"="+lp.GetValue() == label {
					match = true
				}
			}
			if !match {
				continue
			}
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}
