package sfu

import "time"

// ackedReach is how far above the acknowledged rate a lossy link's
// estimate may stay. Above 1 so that random loss does not walk a
// subscriber down: with loss L the link acknowledges (1-L) of what is
// sent, and the current layers still fit while (1-L)·ackedReach ≥ 1, so up
// to 13% random loss (GCC itself backs off above 10%). A link that drops
// what exceeds its capacity acknowledges its capacity whatever is sent, and
// the estimate falls to 1.15 times that.
const ackedReach = 1.15

// ackedRate is the rate the subscriber's transport-wide feedback reports
// as received, in bits/s: bytes of the packets reported received over the
// time between the allocation loop's looks at the feedback, smoothed so that
// one look (250 ms, a few packets at a low rate) does not decide alone.
// Allocation loop only.
type ackedRate struct {
	bytes float64 // decayed sum of bytes acknowledged
	dur   float64 // decayed sum of seconds they took
	at    time.Time
}

// ackedDecay is what the sums keep of the past at each look: half, so the
// rate is mostly the last second's.
const ackedDecay = 0.5

func (a *ackedRate) add(bytes int, now time.Time) {
	if !a.at.IsZero() {
		a.bytes = a.bytes*ackedDecay + float64(bytes)
		a.dur = a.dur*ackedDecay + now.Sub(a.at).Seconds()
	}
	a.at = now
}

// rate is the acknowledged rate, once there has been time to measure one.
func (a *ackedRate) rate() (float64, bool) {
	if a.dur < allocInterval.Seconds() {
		return 0, false
	}
	return a.bytes * 8 / a.dur, true
}

// An increase of GCC's target is held to appLimitedReach times the
// acknowledged rate plus appLimitedSlack, as libwebrtc's rate control holds
// its own (1.5 times the throughput plus 10 kbit/s). Pion's gcc applies
// that bound only while more arrives than its target, so a subscriber that
// receives less than its estimate allows (a paused video, a small tile, a
// layer dynacast stopped: application-limited) saw the target grow 8% a
// second for as long as it lasted. Video then resumed, or jumped from q to
// f when a tile grew, on an estimate nothing had shown, with no probe.
const (
	appLimitedReach = 1.5
	appLimitedSlack = 10_000
)

// heldGrowth is the estimate to use now, given the last one used (prev),
// GCC's target (est) and the acknowledged rate: a decrease is taken as it
// comes; an increase only up to the bound, and never below prev (a link
// that carried prev is not doubted because less is sent now).
func heldGrowth(prev, est, acked float64) float64 {
	ceiling := acked*appLimitedReach + appLimitedSlack
	if est <= prev || est <= ceiling {
		return est
	}
	return max(prev, ceiling)
}
