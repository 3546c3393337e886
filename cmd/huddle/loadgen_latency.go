package main

import (
	"math"
	"sort"
	"sync/atomic"
	"time"
)

// Latency histogram: latencyStep wide buckets up to latencySpan; anything
// slower lands in the last, where a percentile reports the largest latency
// seen. Fine enough for the bench's sub-millisecond figures, long enough
// for an overloaded load test's seconds; 800 KB each.
const (
	latencyStep    = 20 * time.Microsecond
	latencySpan    = 2 * time.Second
	latencyBuckets = int(latencySpan/latencyStep) + 1
)

// latencyHistogram counts latencies from every receiving bot of a run:
// bounded, and lock-free for their read loops.
type latencyHistogram struct {
	buckets [latencyBuckets]atomic.Uint64
	max     atomic.Int64
}

func (h *latencyHistogram) add(d time.Duration) {
	d = max(d, 0)
	h.buckets[min(latencyBuckets-1, int(d/latencyStep))].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// latencyCounts are a histogram's counts at one moment, or the difference
// between two moments.
type latencyCounts struct {
	buckets []uint64
	max     time.Duration // the largest latency ever added, not just between the moments
}

func (h *latencyHistogram) snapshot() latencyCounts {
	c := latencyCounts{buckets: make([]uint64, latencyBuckets), max: time.Duration(h.max.Load())}
	for i := range h.buckets {
		c.buckets[i] = h.buckets[i].Load()
	}
	return c
}

// since is what was counted between old and c.
func (c latencyCounts) since(old latencyCounts) latencyCounts {
	d := latencyCounts{buckets: make([]uint64, len(c.buckets)), max: c.max}
	for i := range c.buckets {
		d.buckets[i] = c.buckets[i]
		if i < len(old.buckets) {
			d.buckets[i] -= old.buckets[i]
		}
	}
	return d
}

func (c latencyCounts) count() uint64 {
	var n uint64
	for _, b := range c.buckets {
		n += b
	}
	return n
}

// percentile q (0 to 1) of the counts, by nearest rank: the upper edge of
// the bucket that holds it (so "p99 <= this"), or the largest latency seen
// when that is the overflow bucket; 0 when nothing was counted.
func (c latencyCounts) percentile(q float64) time.Duration {
	total := c.count()
	if total == 0 {
		return 0
	}
	want := max(1, uint64(math.Ceil(q*float64(total)-1e-9))) // 1e-9: 0.95*n may round up past an integer
	var seen uint64
	for i, b := range c.buckets {
		seen += b
		if seen >= want {
			if i == len(c.buckets)-1 {
				return c.max
			}
			return time.Duration(i+1) * latencyStep
		}
	}
	return c.max
}

// durationPercentile is percentile p of a few durations (joins, first
// media), by sorting them.
func durationPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
