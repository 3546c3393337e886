package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var resultLine = regexp.MustCompile(`RESULT shape=custom participants=(\d+) rooms=(\d+) server_cpu=([\d.]+) cores participants_per_core=(\d+) recv_pps=(\d+) loss_pct=([\d.]+) latency_p95_ms=([\d.]+)`)

// A small `huddle load-test` against its own child server ramps two rooms
// and reports sane, non-zero numbers. The limits are loose: this checks
// the tool, not the server's speed on a busy CI machine.
func TestLoadTestSmoke(t *testing.T) {
	bin := buildHuddle(t)
	out, err := exec.Command(bin, "load-test", "--shape", "custom", "--publishers", "2", "--subscribers", "1",
		"--rooms", "2", "--step-duration", "2s", "--max-latency", "2s", "--max-loss", "50").CombinedOutput()
	if err != nil {
		t.Fatalf("load-test: %v\n%s", err, out)
	}
	m := resultLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no RESULT line:\n%s", out)
	}
	num := func(i int) float64 {
		v, err := strconv.ParseFloat(m[i], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if people, rooms := num(1), num(2); people != 6 || rooms != 2 {
		t.Errorf("ramped to %v participants in %v rooms, want 6 in 2", people, rooms)
	}
	// 2 rooms: 2 publishers, both talking (Opus at 50/s), received by 2
	// others each, who show the video at 640x360: the server sends them
	// the half-resolution layer (200 kbit/s at 30 fps: one packet a
	// frame), so about 2*2*2*(50+30) = 640 packets/s. The full layer
	// (three packets a frame) would make it 1120.
	if cpu, pps := num(3), num(5); cpu <= 0 || pps < 400 || pps > 900 {
		t.Errorf("server CPU %v cores, %v packets/s received: want > 0 and about 640", cpu, pps)
	}
	if loss, lat := num(6), num(7); loss < 0 || loss > 50 || lat <= 0 || lat > 2000 {
		t.Errorf("loss %v%%, p95 latency %v ms", loss, lat)
	}
	if steps := strings.Count(string(out), " ok\n"); steps != 2 {
		t.Errorf("%d steps reported ok, want 2:\n%s", steps, out)
	}
}
