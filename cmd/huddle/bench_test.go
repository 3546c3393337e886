package main

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// A short `huddle bench sfu --baseline` run of the built binary (both
// servers in child processes) gives sane, non-zero results for both. It
// asserts no timings: the machine's speed is not under test.
func TestBenchSFUSmoke(t *testing.T) {
	bin := buildHuddle(t)
	out, err := exec.Command(bin, "bench", "sfu", "--baseline", "--json",
		"--publishers", "2", "--subscribers", "2", "--audio",
		"--pps", "200", "--warmup", "500ms", "--duration", "1s").Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	var results []benchResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("bench output: %v\n%s", err, out)
	}
	if len(results) != 2 || results[0].Server != "huddle" || results[1].Server != "baseline" {
		t.Fatalf("want a huddle and a baseline result, got %+v", results)
	}
	for _, r := range results {
		if r.Published <= 0 || r.Delivered <= 0 || r.Expected != r.Published*3 {
			t.Errorf("%s: published %d, delivered %d, expected %d (want 3 receivers per packet)", r.Server, r.Published, r.Delivered, r.Expected)
		}
		if r.Delivered > 2*r.Expected {
			t.Errorf("%s: delivered %d, far more than the %d expected", r.Server, r.Delivered, r.Expected)
		}
		if r.CPUSeconds <= 0 || r.CPUUsPerPacket <= 0 || r.PacketsPerSec <= 0 || r.RSSBytes <= 0 || r.AllocsPerPacket < 0 {
			t.Errorf("%s: implausible costs %+v", r.Server, r)
		}
		if r.LatencyP50Ms <= 0 || r.LatencyP99Ms < r.LatencyP50Ms || r.LatencyMaxMs <= 0 {
			t.Errorf("%s: implausible latencies %+v", r.Server, r)
		}
	}
	t.Logf("%+v", results)
}
