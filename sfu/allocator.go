package sfu

import (
	"slices"
	"sync"
	"time"
)

// The allocator shares each subscriber's downlink estimate among the video
// it receives. Numbers it uses (docs/ARCHITECTURE.md explains them):
const (
	allocInterval = 250 * time.Millisecond // how often every subscriber is reallocated
	// headroom is the share of the estimate given to media; the rest
	// absorbs bursts (a keyframe is several times an average frame).
	headroom = 0.85
	// upHold is how long a subscriber must be uncongested before one of its
	// tracks moves up a layer it does not yet fit by estimate: the move is
	// itself the probe (gcc's estimate cannot outgrow what is sent by much).
	// After a move up that fails, the hold doubles, up to maxUpHold, so a
	// link at the edge of a layer does not flap.
	upHold    = 2 * time.Second
	maxUpHold = 32 * time.Second
	// resumeFactor: paused video resumes when its lowest layer fits this
	// many times over, so that it does not pause again at once.
	resumeFactor = 1.3
	// pauseTicks: congested ticks on the lowest layer before a pause (3 s:
	// after a drop from a high layer, the link's queue takes a while to
	// drain and reports loss meanwhile, though the lowest layer fits).
	pauseTicks = 12
	// probeReach: a probe asks the link for at most this many times what
	// it carries now (libwebrtc's first probes go to 3 and 6 times its
	// start rate): a viewer on q probes for h before f when h is sent,
	// and for f at once when it is not.
	probeReach = 3.0
	// whyEvery spaces the allocator's debug lines about a video held
	// below its goal.
	whyEvery = 2 * time.Second
)

// alloc is one downtrack's allocator state; only the room's allocation
// loop touches it, except size (under the downtrack's mu).
type alloc struct {
	size        renderSize
	sized       bool
	paused      bool
	upSince     time.Time // uncongested since
	hold        time.Duration
	lastUp      time.Time // the last move up, to detect one that failed
	pausedAt    time.Time
	lowTicks    int
	lastLayer   int8
	lastWhy     time.Time  // the last "holds below its goal" debug line
	seenCur     int8       // the layer it was sent at the last round
	probe       probeState // the outcome of a probe cluster run for this video
	probeTarget int8       // the layer that cluster was for
}

// allocLoop reallocates every subscriber of a room each allocInterval, or
// sooner when kicked (a render size or a track changed). The room owns it.
type allocLoop struct {
	once sync.Once
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

func (r *Room) startAllocator() {
	r.alloc = &allocLoop{kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go r.runAllocator()
}

func (r *Room) kickAllocator() {
	select {
	case r.alloc.kick <- struct{}{}:
	default:
	}
}

func (r *Room) stopAllocator() {
	r.alloc.once.Do(func() { close(r.alloc.stop) })
	<-r.alloc.done
}

func (r *Room) runAllocator() {
	defer close(r.alloc.done)
	t := time.NewTicker(allocInterval)
	defer t.Stop()
	lr := &layerRates{last: map[*simLayer]uint64{}, rates: map[*simLayer]float64{}}
	dyn := map[*Forwarder][maxLayers]bool{}
	last := time.Now()
	for {
		select {
		case <-r.alloc.stop:
			return
		case <-t.C:
		case <-r.alloc.kick:
		}
		now := time.Now()
		r.mu.Lock()
		fs := make([]*Forwarder, 0, len(r.tracks))
		for _, f := range r.tracks {
			fs = append(fs, f)
		}
		peers := make([]*Peer, 0, len(r.peers))
		for _, p := range r.peers {
			peers = append(peers, p)
		}
		r.mu.Unlock()
		if now.Sub(last) >= allocInterval/2 {
			lr.update(fs, now.Sub(last))
			last = now
		}
		speaker := r.speakers.first()
		for _, p := range peers {
			p.allocate(lr, speaker, now)
		}
		r.dynacast(fs, dyn)
	}
}

// first is the loudest speaker of the last list, "" when nobody speaks.
func (d *SpeakerDetector) first() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.last) == 0 {
		return ""
	}
	return d.last[0]
}

// priority orders a subscriber's videos: screen shares, the active
// speaker, pinned tiles, the rest. It reads the allocation loop's copy of
// the render size (allocSize): the signaling goroutine writes alloc.size.
func priority(d *DownTrack, speaker string) int {
	switch {
	case d.fwd.info.Source == "screen":
		return 0
	case d.fwd.info.PublisherID == speaker:
		return 1
	case d.allocSize.pinned:
		return 2
	}
	return 3
}

// allocate picks a layer for each video this subscriber receives.
func (p *Peer) allocate(lr *layerRates, speaker string, now time.Time) {
	p.negMu.Lock()
	videos := make([]*DownTrack, 0, len(p.downs))
	var audio float64
	for _, d := range p.downs {
		if d.video() && d.fwd.local == nil {
			videos = append(videos, d)
		} else if l := d.fwd.layer(0); l != nil {
			audio += lr.rate(l)
		}
	}
	p.negMu.Unlock()
	if len(videos) == 0 {
		return
	}
	// A video that now goes out on a lower layer than at the last round:
	// the loss its old rate caused is still being reported, and counts
	// no more (estimate.go, fenceLoss).
	fence := false
	for _, d := range videos {
		c := int8(d.cur.Load())
		fence = fence || (c >= 0 && c < d.alloc.seenCur)
		d.alloc.seenCur = c
	}
	if fence {
		p.path.est.fenceLoss()
	}
	est, known, congested := p.path.linkSample(now)
	// Pushback while a probe runs or just after is the probe's own: it
	// moves nothing down, but the link is not quiet either.
	lossy := congested && p.path.est.lossyNow()
	shaky := congested && p.path.probe.recent(now)
	if shaky {
		congested = false
	}
	// What the link carries now: a quiet link carries at least that, and a
	// probe's goal is this plus what a move adds.
	carried := audio
	for _, d := range videos {
		if l := d.fwd.layer(int8(d.cur.Load())); l != nil && !d.alloc.paused {
			carried += lr.rate(l)
		}
	}
	// GCC's target cannot outgrow what is carried by much, so it alone
	// would never let a layer up: moves up past it are probed (probe.go).
	if !congested {
		est = max(est, carried)
	}
	budget := est - audio
	for _, d := range videos {
		d.mu.Lock()
		d.allocSize = d.alloc.size
		d.mu.Unlock()
	}
	ac := &allocCtx{p: p, lr: lr, known: known, congested: congested, lossy: lossy && !shaky, shaky: shaky, now: now, carried: carried, videos: videos}
	ac.pollProbe()
	slices.SortFunc(videos, func(a, b *DownTrack) int { return priority(a, speaker) - priority(b, speaker) })
	for _, d := range videos {
		budget -= d.allocateLayer(ac, budget)
	}
}

// allocCtx is one subscriber's view for one allocation round.
type allocCtx struct {
	p                *Peer
	lr               *layerRates
	known, congested bool
	shaky            bool // pushback taken for a probe's (probe.go): not quiet, no move down
	lossy            bool // the congestion is loss: only that pauses a video
	now              time.Time
	carried          float64 // bits/s sent to this subscriber now (measured layer rates)
	videos           []*DownTrack
	probing          bool // a cluster runs for one of the videos
}

// pollProbe hands a finished probe cluster's outcome to the video it ran for.
func (ac *allocCtx) pollProbe() {
	st, _ := ac.p.path.probe.poll(ac.now)
	ac.probing = st == probeRunning
	if o := ac.p.probeOwner; o != nil && (st == probeSucceeded || st == probeFailed) {
		if st == probeFailed {
			// Wait a longer hold before the next try, so that a link at
			// the edge of a layer is not probed again and again; not
			// after a cluster whose receiver stamped it too late to tell.
			if !ac.p.path.probe.inconclusive() {
				o.alloc.hold = min(2*o.alloc.hold, maxUpHold)
			}
			o.alloc.upSince = ac.now
		}
		o.alloc.probe = st // a success counts in this round only
	}
	if st != probeRunning {
		ac.p.probeOwner = nil
	}
}

// canProbe: probing needs the subscriber's transport-wide feedback and a
// started video to carry the padding; without them a move up is tried
// blind after the hold time, as the only probe there is.
func (ac *allocCtx) canProbe() bool {
	if ac.p.path.probe == nil || ac.p.path.est == nil || !ac.p.path.est.twccSeen.Load() {
		return false
	}
	return ac.carrier(nil) != nil
}

// carrier is a video whose SSRC carries a probe's padding: d itself once it
// has started, or another started video of the subscriber.
func (ac *allocCtx) carrier(d *DownTrack) *DownTrack {
	if d != nil && d.cur.Load() >= 0 {
		return d
	}
	for _, v := range ac.videos {
		if v.cur.Load() >= 0 {
			return v
		}
	}
	return nil
}

// probeFor runs the probe a move of d needs: the link must carry extra
// bits/s more than now, with headroom. It reports whether the move may be
// made now: in the round after a cluster for d succeeded (pollProbe).
func (d *DownTrack) probeFor(ac *allocCtx, extra float64, target int8) bool {
	if d.alloc.probe == probeSucceeded {
		d.alloc.probe = probeIdle
		return true
	}
	if ac.probing || ac.p.probeOwner != nil {
		return false // one cluster at a time per subscriber
	}
	c := ac.carrier(d)
	goal := (ac.carried + extra) / headroom
	if c != nil && ac.p.path.probe.begin(c, goal, ac.now) {
		ac.p.probeOwner, ac.probing = d, true
		d.alloc.probeTarget = target
	}
	return false
}

// allocateLayer decides one video's layer within budget and returns the
// bitrate it takes. Down at once when the current layer does not fit; up
// to the best layer that fits by estimate, or after the link has been
// uncongested for the hold time to the best one a probe got through for
// (upTargets); paused when even the lowest layer does not fit, resumed
// with margin.
func (d *DownTrack) allocateLayer(ac *allocCtx, budget float64) float64 {
	a := &d.alloc
	defer func() { a.probe = probeIdle }() // an outcome is acted on in its round or not at all
	if a.hold == 0 {
		a.hold = upHold
	}
	if d.allocSize.hidden {
		d.setPaused(true, "hidden")
		return 0
	}
	capLayer := d.fwd.layerForSize(d.allocSize)
	rate := func(i int8) float64 {
		if l := d.fwd.layer(i); l != nil {
			return ac.lr.rate(l)
		}
		return nominalRate[i]
	}
	lowest := d.fwd.pickLayer(0)
	if ac.known {
		if taken, paused := d.allocatePaused(ac, budget, rate(lowest), lowest); paused {
			return taken
		}
	}
	d.setPaused(false, "")
	if !ac.known {
		d.setLayer(capLayer)
		return rate(d.fwd.pickLayer(capLayer))
	}
	now := ac.now
	cur := min(int8(d.max.Load()), capLayer)
	if cur < a.lastLayer && now.Sub(a.lastUp) < a.hold {
		// The last move up did not hold: wait longer before the next.
		a.hold = min(2*a.hold, maxUpHold)
	}
	// Down, at once, to the highest layer that fits.
	down := false
	for ac.congested && cur > lowest && rate(d.fwd.pickLayer(cur)) > budget {
		cur = d.fwd.pickLayer(cur - 1)
		down = true
	}
	if ac.congested || ac.shaky || down {
		a.upSince = time.Time{}
	} else if a.upSince.IsZero() {
		a.upSince = now
	} else if now.Sub(a.lastUp) >= 2*a.hold && a.hold > upHold {
		a.hold /= 2 // the last move up held: probe sooner again
		a.lastUp = now.Add(-a.hold)
	}
	// Up: at once to the best layer that fits by estimate; else, once the
	// link has been quiet for the hold time, to the best layer a probe may
	// ask for, when a probe at its rate got through.
	if from := d.fwd.pickLayer(cur); !down && cur < capLayer {
		fit, goal, nearest := d.upTargets(ac, from, capLayer, budget, rate)
		quiet := !a.upSince.IsZero() && now.Sub(a.upSince) >= a.hold && now.Sub(a.lastUp) >= a.hold
		up := fit
		if up == from && goal > from && quiet {
			if !ac.canProbe() {
				up = nearest // blind: the move itself is the probe, one layer at a time
			} else if d.probeFor(ac, rate(goal)-rate(from), goal) {
				up = goal
				if t := a.probeTarget; t > from && t <= capLayer && d.fwd.layer(t) != nil {
					up = t // what the probe that got through was for
				}
			}
		}
		if up > from {
			cur = up
			a.lastUp, a.upSince = now, time.Time{}
		} else if goal > from && now.Sub(a.lastWhy) >= whyEvery {
			// Below the layer it could have, and not moving: say why, now
			// and then, for whoever has to find out (debug level).
			a.lastWhy = now
			d.fwd.log.Debug("allocator holds a video below its goal", "subscriber", d.subscriber, "layer", from, "goal", goal,
				"budget", int(budget), "carried", int(ac.carried), "congested", ac.congested, "lossy", ac.lossy, "shaky", ac.shaky,
				"quiet", quiet, "can_probe", ac.canProbe(), "hold", a.hold, "since_up", now.Sub(a.lastUp).Round(time.Millisecond))
		}
	}
	if cur != a.lastLayer {
		d.fwd.log.Debug("allocator moves a video", "subscriber", d.subscriber, "from", a.lastLayer, "to", cur, "budget", int(budget),
			"carried", int(ac.carried), "congested", ac.congested, "lossy", ac.lossy, "hold", a.hold)
	}
	a.lastLayer = cur
	d.setLayer(cur)
	return rate(d.fwd.pickLayer(cur))
}

// upTargets looks at the layers above from, up to capLayer, that the
// publisher sends (a rid it never sent is skipped: the next one up is the
// step; one dynacast paused counts, as targeting it resumes it). fit is
// the best that fits budget by estimate, goal the best a probe may ask
// for (the link asked to carry at most probeReach times what it carries),
// or the nearest when none is in reach; each is from when there is none.
func (d *DownTrack) upTargets(ac *allocCtx, from, capLayer int8, budget float64, rate func(int8) float64) (fit, goal, nearest int8) {
	fit, goal, nearest = from, from, from
	for i := from + 1; i <= capLayer; i++ {
		if d.fwd.layer(i) == nil {
			continue
		}
		if nearest == from {
			nearest = i
		}
		if rate(i) <= budget {
			fit = i
		}
		if ac.carried+rate(i)-rate(from) <= probeReach*ac.carried {
			goal = i
		}
	}
	if goal == from {
		goal = nearest
	}
	return fit, goal, nearest
}

// allocatePaused pauses a video whose lowest layer does not fit, and decides
// whether a paused one resumes: when its lowest layer fits resumeFactor
// times, or after the hold time quiet and a probe at that rate got through.
// It reports the bitrate taken and whether the video stays paused.
func (d *DownTrack) allocatePaused(ac *allocCtx, budget, lowRate float64, lowest int8) (float64, bool) {
	a := &d.alloc
	now := ac.now
	limit := 1.0
	if a.paused {
		limit = resumeFactor
	}
	// Paused only on pushback: an uncongested link carries what it gets.
	// ... only on loss: growing delay alone moves layers down but does not
	// stop the video (audio suffers only when packets are lost) ... and only
	// once already on the lowest layer for pauseTicks ticks: a drop from a
	// high layer is congested for a while.
	if ac.congested && ac.lossy && budget < lowRate && int8(d.cur.Load()) == lowest {
		a.lowTicks++
	} else {
		a.lowTicks = 0
	}
	if !(a.paused && budget < lowRate*limit) && a.lowTicks < pauseTicks {
		return 0, false
	}
	if !a.paused {
		a.pausedAt, a.upSince = now, time.Time{}
		if now.Sub(a.lastUp) < a.hold {
			a.hold = min(2*a.hold, maxUpHold) // a resume or move up that failed
		}
		d.setPaused(true, "bandwidth")
		return 0, true
	}
	// Paused: only audio flows, and GCC's estimate cannot outgrow it. Once
	// the link has been quiet for the hold time, probe for the lowest
	// layer (with resumeFactor's margin), and resume when it got through.
	if ac.congested || ac.shaky {
		a.upSince = time.Time{}
		return 0, true
	} else if a.upSince.IsZero() {
		a.upSince = now
	}
	if a.probe != probeSucceeded && (a.upSince.IsZero() || now.Sub(a.upSince) < a.hold) {
		return 0, true
	}
	if ac.canProbe() && !d.probeFor(ac, lowRate*resumeFactor, lowest) {
		return 0, true
	}
	a.lastUp, a.upSince = now, time.Time{}
	d.setLayer(lowest)
	a.lastLayer = lowest
	d.setPaused(false, "")
	return lowRate, true
}

// setLayer caps the downtrack at a layer, counting switches for metrics.
func (d *DownTrack) setLayer(l int8) {
	if int8(d.max.Load()) != l {
		d.SetMaxLayer(l)
	}
}

// setPaused stops or restarts a video for this subscriber and tells it why.
// A resumed video restarts at a keyframe.
func (d *DownTrack) setPaused(paused bool, reason string) {
	if d.alloc.paused == paused {
		return
	}
	d.alloc.paused = paused
	d.paused.Store(paused)
	d.fwd.log.Debug("video paused for a subscriber", "subscriber", d.subscriber, "paused", paused, "reason", reason)
	if paused {
		d.path.pauses.Add(1)
	}
	if !paused {
		d.dropped.Store(true) // resynchronise at a keyframe, from the cache if it can
	}
	if ev, ok := d.fwd.events(); ok && d.subscriber != "" {
		ev.VideoPaused(d.subscriber, d.fwd.info.ID, paused, reason)
	}
}

// AdaptiveEvents, when a room's events implement them, carry the
// allocator's decisions to clients.
type AdaptiveEvents interface {
	// VideoPaused tells a subscriber that a video is paused (reason
	// "bandwidth" or "hidden") or resumed.
	VideoPaused(subscriberID, trackID string, paused bool, reason string)
	// PublishLayers tells a track's publisher which of its simulcast
	// layers (by rid) to encode.
	PublishLayers(t TrackInfo, rids []string, active []bool)
}

func (f *Forwarder) events() (AdaptiveEvents, bool) {
	if f.room == nil {
		return nil, false
	}
	ev, ok := f.room.events.(AdaptiveEvents)
	return ev, ok
}
