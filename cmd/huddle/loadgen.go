package main

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// loadgen is the synthetic media load of `huddle bench sfu` and `huddle
// load-test`: SDK bots in this process publish stamped VP8 and Opus
// (loadgen_publish.go, loadgen_stamp.go) and read each other's
// (loadgen_receive.go), counting packets, sequence gaps and latency
// (loadgen_latency.go). Each command decides its load's shape and what it
// reports; this is the one implementation of sending, receiving and
// counting that both use.
//
// Stamps count nanoseconds from epoch on this process's monotonic clock,
// which publishers and receivers share: latency needs no clock sync.
// Packets are counted when their frame's stamp falls inside the window
// [from, to) (an unstamped packet by when it arrived): the bench measures
// one window, exact because all packets of a frame fall on the same side;
// the load test opens the window for the whole run and measures steps by
// differences of counts.
type loadgen struct {
	epoch    time.Time
	from, to atomic.Int64

	published atomic.Int64 // packets publishers sent inside the window
	// What receivers got inside the window: distinct packets (a duplicate
	// is not counted twice) and their bytes, and per stream the sequence
	// numbers it advanced by and those not (yet) seen.
	delivered, bytes, expected, missing atomic.Int64
	// latency is from a packet's send stamp to its hand-over by the
	// receiving bot's SRTP session (loadgen_arrival.go) where the bot
	// records it, else to its read loop; readLatency always to the read
	// loop. Both hold only stamped packets inside the window.
	latency, readLatency *latencyHistogram

	mu         sync.Mutex
	bots       []*botReceiver
	firstMedia []time.Duration // per bot, from its join to its first packet
}

func newLoadgen() *loadgen {
	g := &loadgen{epoch: time.Now(), latency: new(latencyHistogram), readLatency: new(latencyHistogram)}
	g.setWindow(math.MaxInt64, math.MaxInt64) // closed until a command opens it
	return g
}

func (g *loadgen) now() int64 { return int64(time.Since(g.epoch)) }

// setWindow sets the measuring window, in nanoseconds since epoch.
func (g *loadgen) setWindow(from, to int64) {
	g.from.Store(from)
	g.to.Store(to)
}

// openWindow counts everything from now on.
func (g *loadgen) openWindow() { g.setWindow(math.MinInt64, math.MaxInt64) }

func (g *loadgen) inWindow(ns int64) bool { return ns >= g.from.Load() && ns < g.to.Load() }

// loadCounts are a loadgen's counters at one moment.
type loadCounts struct {
	published, delivered, bytes, expected, missing int64
	latency, readLatency                           latencyCounts
}

func (g *loadgen) counts() loadCounts {
	return loadCounts{published: g.published.Load(), delivered: g.delivered.Load(), bytes: g.bytes.Load(),
		expected: g.expected.Load(), missing: g.missing.Load(),
		latency: g.latency.snapshot(), readLatency: g.readLatency.snapshot()}
}

// since is what was counted between old and c.
func (c loadCounts) since(old loadCounts) loadCounts {
	return loadCounts{published: c.published - old.published, delivered: c.delivered - old.delivered,
		bytes: c.bytes - old.bytes, expected: c.expected - old.expected, missing: c.missing - old.missing,
		latency: c.latency.since(old.latency), readLatency: c.readLatency.since(old.readLatency)}
}

// minStamped is the fewest stamped packets any bot has received on any of
// the tracks it should get (0 while one is missing).
func (g *loadgen) minStamped() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	least := int64(math.MaxInt64)
	for _, b := range g.bots {
		least = min(least, b.minStamped())
	}
	return least
}

func (g *loadgen) noteFirstMedia(d time.Duration) {
	g.mu.Lock()
	g.firstMedia = append(g.firstMedia, d)
	g.mu.Unlock()
}

// firstMediaP is percentile p of the bots' times from join to first media.
func (g *loadgen) firstMediaP(p float64) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return durationPercentile(g.firstMedia, p)
}
