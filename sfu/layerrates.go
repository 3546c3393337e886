package sfu

import "time"

// nominalRate is assumed for a layer not measured yet (bits/s), lowest
// first: roughly what browsers send for 180p, 360p and 720p.
var nominalRate = [maxLayers]float64{150e3, 500e3, 1500e3}

// rateSmoothing is how far each tick's measurement moves a layer's rate.
const rateSmoothing = 0.3

// layerRates measures what each layer of each track carries, once per tick.
type layerRates struct {
	last  map[*simLayer]uint64
	rates map[*simLayer]float64
}

func (lr *layerRates) update(fs []*Forwarder, dt time.Duration) {
	seen := map[*simLayer]bool{}
	for _, f := range fs {
		for i := range int8(maxLayers) {
			l := f.layer(i)
			if l == nil {
				continue
			}
			seen[l] = true
			b := l.bytes.Load()
			if prev, ok := lr.last[l]; ok && dt > 0 {
				r := float64(b-prev) * 8 / dt.Seconds()
				old, had := lr.rates[l]
				switch {
				case l.paused.Load():
					// Its publisher was told to stop it: what still
					// arrives is the tail, an undercount that made a
					// layer look cheap enough to move up to without a
					// probe. The rate it had is kept for its resume.
				case r == 0:
					lr.rates[l] = 0 // stopped or not started: nominal until it flows
				case !had || old == 0:
					lr.rates[l] = r
				default:
					lr.rates[l] = old + rateSmoothing*(r-old)
				}
			}
			lr.last[l] = b
		}
	}
	for l := range lr.last {
		if !seen[l] {
			delete(lr.last, l)
			delete(lr.rates, l)
		}
	}
}

// rate is a layer's bitrate: measured, or remembered while the publisher
// has it paused, or nominal before anything was measured.
func (lr *layerRates) rate(l *simLayer) float64 {
	if r, ok := lr.rates[l]; ok && r > 0 {
		return r
	}
	return nominalRate[l.index]
}
