package main

import (
	"encoding/json"
	"maps"
	"math"
	"os/exec"
	"testing"
	"time"
)

// A short `huddle bench sfu --baseline` run of the built binary (both
// servers in child processes) gives sane, non-zero results for both. It
// asserts no timings: the machine's speed is not under test.
func TestBenchSFUSmoke(t *testing.T) {
	bin := buildHuddle(t)
	out, err := exec.Command(bin, "bench", "sfu", "--baseline", "--json",
		"--publishers", "2", "--subscribers", "2", "--audio",
		"--pps", "200", "--pacing", "2.5", "--warmup", "500ms", "--duration", "1s").Output()
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
		if r.MachineBusyPct <= 0 || r.MachineBusyPct > 100 || r.BotsCPUPct <= 0 || r.LoadAverage < 0 {
			t.Errorf("%s: implausible machine figures %+v", r.Server, r)
		}
		// Only huddle has the forward delay histogram.
		if fwd := r.ForwardP50Ms > 0 && r.ForwardP99Ms >= r.ForwardP50Ms; fwd != (r.Server == "huddle") {
			t.Errorf("%s: forward delay p50 %v p99 %v", r.Server, r.ForwardP50Ms, r.ForwardP99Ms)
		}
		// The server delay starts at the socket, before the forwarder's
		// read: never shorter, and longer on average once any packet
		// carried the kernel's receive stamp.
		if r.Server == "huddle" && (r.ServerP50Ms < r.ForwardP50Ms || r.ServerP99Ms < r.ForwardP99Ms || r.ServerMeanMs <= r.ForwardMeanMs) {
			t.Errorf("huddle: server delay p50 %v p99 %v mean %v against forward delay p50 %v p99 %v mean %v",
				r.ServerP50Ms, r.ServerP99Ms, r.ServerMeanMs, r.ForwardP50Ms, r.ForwardP99Ms, r.ForwardMeanMs)
		}
		if r.ServerWaitMsPerS < 0 || r.BotsWaitMsPerS < 0 {
			t.Errorf("%s: negative CPU waits %+v", r.Server, r)
		}
	}
	t.Logf("%+v", results)
}

// Percentiles of the forward delay come from the difference of two
// scrapes, as the upper bound of the bucket that holds them.
func TestForwardDelayPercentiles(t *testing.T) {
	inf := math.Inf(1)
	a := serverSample{delay: map[float64]uint64{0.001: 10, 0.005: 10, 0.01: 10, inf: 10}}
	b := serverSample{delay: map[float64]uint64{0.001: 60, 0.005: 108, 0.01: 109, inf: 110}}
	p50, p99, ok := forwardDelay(a, b)
	if !ok || p50 != 1 || p99 != 10 {
		t.Fatalf("p50 %v p99 %v ok %v, want 1 and 10 ms", p50, p99, ok)
	}
	if _, _, ok := forwardDelay(serverSample{}, serverSample{delay: map[float64]uint64{}}); ok {
		t.Fatal("a server without the histogram gave percentiles")
	}
	if got := saturated(benchResult{Delivered: 98, Expected: 100}); got == "" {
		t.Fatal("2% short of expected is not saturated")
	}
	if got := saturated(benchResult{Delivered: 100, Expected: 100, MachineBusyPct: 50}); got != "" {
		t.Fatalf("a machine half busy that delivers everything is saturated: %s", got)
	}
}

// The bench's pacer releases a frame written at once in 5 ms windows at
// its pacing rate: 33 packets at 2500 packets/s leave as 13, 12 and 8
// packets at 0, 5 and 10 ms; after a pause, the next frame starts at once.
func TestBenchPacerWindows(t *testing.T) {
	cfg := benchConfig{pps: 1000, pacing: 2.5}
	p := &pacer{slot: cfg.paceSlot()}
	t0 := time.Unix(1000, 0)
	count := map[time.Duration]int{}
	for range 33 {
		count[p.reserve(t0).Sub(t0)]++
	}
	want := map[time.Duration]int{0: 13, 5 * time.Millisecond: 12, 10 * time.Millisecond: 8}
	if !maps.Equal(count, want) {
		t.Fatalf("releases by offset %v, want %v", count, want)
	}
	t1 := t0.Add(33 * time.Millisecond)
	if r := p.reserve(t1); r.After(t1) {
		t.Fatalf("the next frame's first packet waits until %v after it was written", r.Sub(t1))
	}
	if (benchConfig{pps: 1000}).paceSlot() != 0 {
		t.Fatal("no pacing, yet a slot")
	}
}
