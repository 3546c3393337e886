// Package metricstest reads a server's Prometheus /metrics for tests. It
// imports nothing of Huddle's, so every package's tests can use it, the
// node package's own among them.
package metricstest

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Scrape reads baseURL + "/metrics". Each series maps from its name and
// labels as printed (`huddle_x_total{type="a"}`) to its value, and each
// labelled metric's bare name to the sum over its label sets; a series the
// server has not counted yet is absent (reads as 0).
func Scrape(t testing.TB, baseURL string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sums := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("metrics: unexpected line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics: %q: %v", line, err)
		}
		series := line[:i]
		out[series] = v
		if name, _, labelled := strings.Cut(series, "{"); labelled {
			sums[name] += v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("metrics: %v", err)
	}
	for name, v := range sums {
		out[name] = v
	}
	return out
}
