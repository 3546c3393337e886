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
