package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// A smoke run of `huddle bench signaling`: it joins and holds its
// participants and reports every number it promises.
func TestBenchSignalingSmoke(t *testing.T) {
	bin := buildHuddle(t)
	out, err := exec.Command(bin, "bench", "signaling", "--conns", "60", "--per-room", "20", "--hold", "500ms").CombinedOutput()
	if err != nil {
		t.Fatalf("bench signaling: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	for _, want := range []string{
		`60 participants in 3 rooms of 20`,
		`memory per participant: +[0-9.]+ KB`,
		`goroutines per participant: [0-9.]+`,
		`join latency: +p50 \S+ +p99 \S+ +max \S+ \(60 joins`,
		`server idle CPU: +[0-9.]+% of one core`,
	} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("report lacks %q", want)
		}
	}
	m := regexp.MustCompile(`goroutines per participant: ([0-9.]+)`).FindSubmatch(out)
	if m != nil {
		if g, _ := strconv.ParseFloat(string(m[1]), 64); g > 3 {
			t.Errorf("%.2f goroutines per idle participant, want at most 3", g)
		}
	}
}
