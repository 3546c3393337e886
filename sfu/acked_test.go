package sfu

import (
	"testing"
	"time"

	"github.com/pion/logging"
)

// ackedLink runs an estimator through ticks allocation rounds of a link:
// each round it sends perTick packets of 1000 bytes and the feedback says
// which arrived (arrives(i) for the i-th packet overall). It returns the
// last sample's estimate and whether that round was congested, and the
// rate sent, in bits/s.
func ackedLink(t *testing.T, ticks, perTick int, arrives func(i int) bool) (est, sentRate float64, congested bool) {
	t.Helper()
	e := newEstimator(logging.NewDefaultLoggerFactory())
	t.Cleanup(e.close)
	seq := uint16(65500) // across the wrap
	now := time.Now()
	var sent uint64
	for tick := range ticks {
		base := seq
		got := make([]bool, perTick)
		for i := range perTick {
			e.sent(seq, 1000)
			seq++
			sent += 1000
			got[i] = arrives(tick*perTick + i)
		}
		e.flush()
		e.feedback(twccReport(base, got))
		// Rounds 250 ms apart, seen from at least lossSettle after the
		// feedback arrived, so that its losses have settled.
		now = now.Add(allocInterval)
		est, _, congested = e.sample(sent, now.Add(lossSettle))
	}
	return est, float64(perTick*1000*8) / allocInterval.Seconds(), congested
}

// A link that drops what it cannot carry acknowledges its capacity, and a
// lossy round's estimate falls to ackedReach times that, whatever GCC's
// target (here its initial 1 Mbit/s, far above the link). In the full
// suite GCC's target once stayed at 390 kbit/s for 25 s over a 100 kbit/s
// link, and the video never paused (TestShapedLinkBelowLowestPausesVideo).
func TestLossyLinkEstimateFallsToWhatArrives(t *testing.T) {
	// 192 kbit/s sent, every other packet dropped: 96 arrive.
	est, sent, congested := ackedLink(t, 16, 6, func(i int) bool { return i%2 == 0 })
	if !congested {
		t.Fatalf("half the packets lost: not congested")
	}
	acked := sent / 2
	if est > acked*ackedReach*1.05 || est < acked*ackedReach*0.8 {
		t.Errorf("estimate %.0f bit/s with %.0f sent and %.0f arriving, want about %.0f (ackedReach times what arrives)", est, sent, acked, acked*ackedReach)
	}
}

// Random loss the layers survive does not walk a subscriber down: with one
// packet in twelve lost (8%, lossy), the estimate stays at or above what is
// sent, so the current layers still fit.
func TestRandomLossKeepsTheRateSent(t *testing.T) {
	est, sent, congested := ackedLink(t, 16, 12, func(i int) bool { return i%12 != 5 })
	if !congested {
		t.Fatalf("8%% lost: not congested, want lossy (above congestionLoss)")
	}
	if est < sent {
		t.Errorf("estimate %.0f bit/s with %.0f sent and 8%% random loss: below what is sent", est, sent)
	}
}

// GCC's target may grow only to appLimitedReach times what arrives (plus
// appLimitedSlack) while little is sent; Pion's gcc lets it grow without
// bound then. A decrease is taken at once, and an estimate the link once
// carried is kept while less is sent.
func TestHeldGrowth(t *testing.T) {
	for _, c := range []struct {
		name                   string
		prev, est, acked, want float64
	}{
		{"paused video: only audio arrives, GCC's target grew", 60e3, 400e3, 45e3, 77.5e3},
		{"growth within reach is taken", 200e3, 250e3, 180e3, 250e3},
		{"a decrease is taken at once", 1e6, 300e3, 900e3, 300e3},
		{"a small tile after f: what the link carried is kept", 1.9e6, 2.5e6, 180e3, 1.9e6},
		{"the first estimate, before any was used", 0, 1e6, 100e3, 160e3},
	} {
		if got := heldGrowth(c.prev, c.est, c.acked); got != c.want {
			t.Errorf("%s: heldGrowth(%.0f, %.0f, %.0f) = %.0f, want %.0f", c.name, c.prev, c.est, c.acked, got, c.want)
		}
	}
}
