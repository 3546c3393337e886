package sfu

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// targetCase is one subscriber with one simulcast video on q, whose
// publisher sends the given layers, with a send path that can probe.
func targetCase(t *testing.T, layers ...int) (*allocCtx, *DownTrack) {
	t.Helper()
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	lr := &layerRates{last: map[*simLayer]uint64{}, rates: map[*simLayer]float64{f.base: 150e3}}
	for _, i := range layers {
		l := newSimLayer(i, []string{"q", "h", "f"}[i], nil, uint32(1234+i), webrtc.RTPCodecTypeVideo)
		f.attach(l)
		lr.rates[l] = []float64{150e3, 450e3, 1200e3}[i]
	}
	path := newSendPath(slog.New(slog.DiscardHandler))
	path.est = newEstimator(logging.NewDefaultLoggerFactory())
	path.est.twccSeen.Store(true)
	path.probe = newProber(path)
	t.Cleanup(func() { path.probe.close(); path.est.close() })
	p := &Peer{downs: map[string]*DownTrack{}, path: path}
	d := newDownTrack(f, path, nil)
	p.downs[f.info.ID] = d
	d.SetMaxLayer(0)
	d.cur.Store(0) // it gets q
	d.alloc.seenCur = 0
	now := time.Unix(1000, 0)
	d.alloc.hold = upHold
	d.alloc.upSince = now.Add(-2 * upHold) // the link has been quiet
	ac := &allocCtx{p: p, lr: lr, known: true, now: now, carried: 45e3 + 150e3, videos: []*DownTrack{d}}
	return ac, d
}

// A viewer on q whose estimate fits f goes straight to f, not one layer
// per round, whether or not the publisher sends h.
func TestAllocatorMovesStraightToTheLayerThatFits(t *testing.T) {
	for _, layers := range [][]int{{1, 2}, {2}} {
		ac, d := targetCase(t, layers...)
		d.allocateLayer(ac, 2e6)
		if got := d.max.Load(); got != 2 {
			t.Errorf("layers q+%v, 2 Mbit/s to spare: capped at %d, want 2 (f)", layers, got)
		}
	}
}

// A viewer on q whose estimate fits nothing more probes before it moves:
// for h when the publisher sends h (f would be more than probeReach times
// what the link carries), for f when h was never sent. It moves when the
// probe got through, to the layer the probe was for.
func TestAllocatorProbesTowardsALayerThatIsSent(t *testing.T) {
	for _, c := range []struct {
		layers []int
		want   int8
	}{{[]int{1, 2}, 1}, {[]int{2}, 2}} {
		ac, d := targetCase(t, c.layers...)
		pr := ac.p.path.probe
		ac.pollProbe()
		d.allocateLayer(ac, 300e3)
		if got := d.max.Load(); got != 0 {
			t.Fatalf("layers q+%v: moved to %d before any probe", c.layers, got)
		}
		pr.mu.Lock()
		goal, running := pr.goal, pr.state == probeRunning
		pr.mu.Unlock()
		need := (ac.carried + ac.lr.rate(d.fwd.layer(c.want)) - 150e3) / headroom
		if !running || d.alloc.probeTarget != c.want || goal != need {
			t.Fatalf("layers q+%v: probe running %v for layer %d at %.0f bit/s, want layer %d at %.0f", c.layers, running, d.alloc.probeTarget, goal, c.want, need)
		}
		// The cluster got through: the next round moves there.
		pr.mu.Lock()
		pr.finish(true, "", ac.now)
		pr.mu.Unlock()
		ac.now = ac.now.Add(allocInterval)
		ac.pollProbe()
		d.allocateLayer(ac, 300e3)
		if got := d.max.Load(); got != int32(c.want) {
			t.Errorf("layers q+%v: after the probe got through, capped at %d, want %d", c.layers, got, c.want)
		}
	}
}

// A layer dynacast paused keeps the rate it had: the tail that still
// arrives after its publisher was told to stop is an undercount, and
// made a layer look cheap enough to move up to without a probe.
func TestPausedLayerKeepsItsRate(t *testing.T) {
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	h := newSimLayer(1, "h", nil, 1235, webrtc.RTPCodecTypeVideo)
	f.attach(h)
	lr := &layerRates{last: map[*simLayer]uint64{}, rates: map[*simLayer]float64{}}
	tick := func(bytes uint64) float64 {
		h.bytes.Add(bytes)
		lr.update([]*Forwarder{f}, allocInterval)
		return lr.rate(h)
	}
	tick(0)
	if r := tick(12500); r != 400e3 { // 400 kbit/s over a tick
		t.Fatalf("flowing: %.0f bit/s, want 400000", r)
	}
	h.paused.Store(true)
	for _, tail := range []uint64{3000, 500, 0} {
		if r := tick(tail); r != 400e3 {
			t.Errorf("paused, %d bytes of tail: %.0f bit/s, want the 400000 it had", tail, r)
		}
	}
	h.paused.Store(false)
	if r := tick(0); r != nominalRate[1] {
		t.Errorf("resumed, not flowing yet: %.0f bit/s, want the nominal %.0f", r, nominalRate[1])
	}
	if r := tick(12500); r != 400e3 {
		t.Errorf("flowing again: %.0f bit/s, want 400000", r)
	}
}
