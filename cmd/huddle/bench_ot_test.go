package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchOT: `huddle bench ot` replays a trace through both stores and
// checks the result against the trace's end; a trace whose end does not
// match is reported as an error, not as a number.
func TestBenchOT(t *testing.T) {
	dir := t.TempDir()
	write := func(name, end string) string {
		p := filepath.Join(dir, name)
		trace := `{"startContent":"ab","endContent":"` + end + `","txns":[
			{"patches":[[2,0,"c"],[0,1,""]]},{"patches":[[2,0,"😀d"]]}]}`
		if err := os.WriteFile(p, []byte(trace), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := benchOT([]string{"--trace", write("good.json", "bc😀d"), "--runs", "1"}); err != nil {
		t.Fatalf("bench ot: %v", err)
	}
	err := benchOT([]string{"--trace", write("bad.json", "nope"), "--runs", "1", "--store", "mem"})
	if err == nil || !strings.Contains(err.Error(), "differs from the trace's end") {
		t.Fatalf("mismatching trace: %v", err)
	}
	if err := benchOT(nil); err == nil || !strings.Contains(err.Error(), "--trace or --clients is required") {
		t.Fatalf("no trace: %v", err)
	}
}

// TestBenchOTClientsSmoke: `huddle bench ot --clients` with a few SDK
// editors against a server child built from this tree, typing and flat
// out, converges (benchOTClients compares every editor's text) and gives
// sane, non-zero numbers. No timing is asserted: the window stays open
// until an ack has arrived, however slow the machine.
func TestBenchOTClientsSmoke(t *testing.T) {
	bin := buildHuddle(t)
	for _, flat := range []bool{false, true} {
		r, err := benchOTClients(clientsConfig{clients: 3, flat: flat, warmup: 200 * time.Millisecond, duration: time.Second, huddleBin: bin})
		if err != nil {
			t.Fatalf("flat=%v: %v", flat, err)
		}
		if r.acks <= 0 || r.seconds < 1 || r.p50 <= 0 || r.p99 < r.p50 || r.worst < r.p99 {
			t.Errorf("flat=%v: implausible result %+v", flat, r)
		}
		if r.commits.commits < 1 || r.commits.ops < r.commits.commits || r.commits.seconds <= 0 {
			t.Errorf("flat=%v: the server's commit counters did not move: %+v", flat, r.commits)
		}
		if c := r.commits; c.fast > c.upTo[0] || c.upTo[0] > c.upTo[1] || c.upTo[1] > c.upTo[2] || c.upTo[2] > c.commits {
			t.Errorf("flat=%v: commit histogram buckets out of order: %+v", flat, c)
		}
		t.Logf("flat=%v: %+v", flat, r)
	}
}
