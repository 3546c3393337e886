package main

import (
	"fmt"
	"io"
	"time"
)

// What "half the machine's saturation load" means in `huddle bench sfu
// --half-saturation`: the load is the number of subscribers (at the
// configured publishers, packets/s and frames/s). The bench ramps it up
// in steps, each a short run of the huddle server with its own warm-up,
// and the first step that saturates is the saturation load. A step
// saturates when the machine no longer keeps up with it:
//   - fewer than 99% of the expected packets arrive, or
//   - the server drops packets for a subscriber (its queues overflow), or
//   - the server pauses video for a subscriber (its estimate of the link,
//     fed by the bots' feedback, says it pushes back), or
//   - the machine is busy more than saturatedBusy of its time.
//
// The machine is what saturates, not the server alone: the bots run on it
// too, and their share (bots_cpu) is printed with every step. The measured
// run then uses half that many subscribers (at least 1).
const (
	saturatedDelivery = 0.99
	saturatedBusy     = 90.0 // percent of all cores
)

// saturated says why a ramp step did not keep up ("" when it did).
func saturated(r benchResult) string {
	switch {
	case float64(r.Delivered) < saturatedDelivery*float64(r.Expected):
		return fmt.Sprintf("delivered %d of %d", r.Delivered, r.Expected)
	case r.ServerDrops > 0:
		return fmt.Sprintf("server dropped %d", r.ServerDrops)
	case r.Pauses > 0:
		return fmt.Sprintf("server paused video %d times", r.Pauses)
	case r.MachineBusyPct > saturatedBusy:
		return fmt.Sprintf("machine %.0f%% busy", r.MachineBusyPct)
	}
	return ""
}

// rampToSaturation runs the huddle server at step, 2*step, ... subscribers
// (short windows) until one saturates or limit is passed, and returns the
// saturating number (0 if none did).
func rampToSaturation(w io.Writer, cfg benchConfig, step, limit int, window time.Duration) (int, error) {
	cfg.warmup, cfg.duration = min(cfg.warmup, 2*time.Second), window
	for n := step; n <= limit; n += step {
		cfg.subscribers = n
		r, err := benchRun(cfg, "huddle")
		if err != nil {
			return 0, fmt.Errorf("ramp at %d subscribers: %w", n, err)
		}
		why := saturated(r)
		verdict := "keeps up"
		if why != "" {
			verdict = "saturated: " + why
		}
		fmt.Fprintf(w, "ramp %3d subscribers: %.0f packets/s delivered, server %.0f%% of a core, bots %.0f%% of a core, machine %.0f%% busy, load average %.2f, latency p99 %.2f ms%s: %s\n",
			n, r.PacketsPerSec, 100*r.CPUSeconds/r.Seconds, r.BotsCPUPct, r.MachineBusyPct, r.LoadAverage, r.LatencyP99Ms, describeForward(r), verdict)
		if why != "" {
			return n, nil
		}
	}
	return 0, nil
}
