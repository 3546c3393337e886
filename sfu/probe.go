package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// Probing: before the allocator moves a subscriber up a layer, or resumes
// a paused video, it checks that the link can carry the new rate by sending
// it: for a short cluster the send path adds padding-only RTP packets (on a
// video's SSRC, numbered in that video's sequence and in the transport-wide
// sequence) so that everything sent adds up to the goal rate. The
// subscriber's transport-wide feedback then says when each packet arrived;
// if the cluster arrived at the goal rate, with little loss and without
// building a queue, the link has that much room and the move is made;
// otherwise it is abandoned (and the allocator waits longer before the
// next try). docs/ARCHITECTURE.md ("Probing") has the numbers and why.
//
// Why our own measurement and not GCC's estimate: Pion's GCC never lets its
// target grow past 1.5 times the rate it saw arrive, and only by about 8%
// a second (the loss-based part by 5% per feedback), so on a link that has
// just been freed it takes tens of seconds to find the room, and none at
// all while nothing more is sent. A cluster's own arrival rate is the
// answer libwebrtc's ProbeBitrateEstimator gives its estimator; the padding
// passes GCC's recorder as well, so GCC also sees the higher rate arrive.
const (
	// probeDuration is how long one cluster sends padding, at most.
	probeDuration = 400 * time.Millisecond
	// probeSettle is how long after the cluster its feedback may take.
	probeSettle = time.Second
	// probeTick is the pacing step: padding is spread over the cluster,
	// never sent as one burst that a small router queue would drop.
	probeTick = 5 * time.Millisecond
	// probePad is the padding per packet: the most an RTP padding length
	// byte can say.
	probePad = 255
	// probeMaxPadRate bounds the padding rate (bits/s), whatever the goal:
	// each tick queues at most its share of it.
	probeMaxPadRate = 4_000_000
	// probeOvershoot: the cluster is paced at this much above the goal, so
	// that a pacer woken late still reaches it.
	probeOvershoot = 1.1
	// A cluster succeeds when it arrived at probeEnough of the goal or
	// faster (measured over its arrival span), lost at most probeMaxLoss
	// of its packets, and built no queue (probeMaxQueueing). Arrival rate
	// is compared with the goal, not with the rate it was sent at: a
	// sender woken late sends in bursts and only looks faster.
	probeEnough  = 0.95
	probeMaxLoss = 0.05
	// probeMaxQueueing: the cluster fails when its last quarter was
	// delayed this much more than the least delayed packet of the whole
	// cluster (the smallest delay of the last quarter): a queue grew, the
	// link is full even if arrivals looked fast. A receiver that stamps
	// arrivals late (a stall) squeezes its arrival times together, but
	// cannot make a packet look less delayed than the link made it: the
	// least delayed packet is the link's, wherever in the cluster the
	// stall fell (against the first quarter only, a stall at the start
	// would hide a queue growing behind it).
	probeMaxQueueing = 30 * time.Millisecond
	// probeMinSpread: a link cannot deliver a cluster in less time than
	// it took to send it; arrivals spread over less than this share of
	// the send span were squeezed by a receiver that stamped late (a
	// stall that ended late in the cluster hides both the queue and the
	// rate), and prove nothing.
	probeMinSpread = 0.8
	// A cluster is given up early once probeEarlyPackets of it are reported
	// over at least probeEarlySpan and they lost more than probeEarlyLoss
	// or queued twice probeMaxQueueing: the link is full, and more padding
	// would only queue and drop.
	probeEarlyPackets = 20
	probeEarlySpan    = 100 * time.Millisecond
	probeEarlyLoss    = 0.1
	// probeGrace: while a cluster runs and this long after it ends, the
	// link's pushback is taken for the probe's own: the allocator moves
	// nothing down for it (a failed probe must not cost a layer), but it
	// counts as not quiet.
	probeGrace = time.Second
	// probeRecords is how many packets' send and arrival one cluster
	// remembers (a cluster at the largest goal is a few hundred packets).
	probeRecords = 2048
	// probeOverhead is counted per packet on top of its RTP size, for what
	// the link carries too: SRTP's tag and UDP/IP headers.
	probeOverhead = 16 + 28
)

type probeState int

const (
	probeIdle probeState = iota
	probeRunning
	probeSucceeded
	probeFailed
)

// probeRecord is one packet sent while a cluster ran.
type probeRecord struct {
	cluster uint32
	seq     uint16 // transport-wide sequence number
	size    uint16
	sent    int64 // unix nanos
	arrival int64 // microseconds on the subscriber's feedback clock
	missing int64 // unix nanos it was first reported not received
	status  uint8 // 0: not reported yet, 1: received, 2: not received
}

// prober runs one subscriber PeerConnection's probe clusters. The
// allocation loop starts a cluster and polls its outcome; the send path's
// worker reports what it sent (sent) and sends the padding the pacing
// goroutine queues; the RTCP reader hands it the feedback.
type prober struct {
	path   *sendPath
	active atomic.Bool // a cluster records packets (sending or awaiting feedback)

	mu       sync.Mutex
	state    probeState
	cluster  uint32
	goal     float64 // bits/s
	start    time.Time
	stop     time.Time // padding ends
	deadline time.Time // feedback ends
	sending  bool
	recs     []probeRecord // allocated at the first cluster
	first    uint16        // transport-wide seq of the cluster's first packet
	count    int           // packets recorded
	bytes    int           // bytes recorded (with probeOverhead)
	ended    time.Time     // when the last cluster finished
	result   float64       // what arrived, bits/s
	sendRate float64       // what was sent, bits/s (for the log)
	queued   time.Duration // the last judge's queueing
	why      string        // why the last cluster failed, for the log

	quit chan struct{}
	wg   sync.WaitGroup

	// Metrics (metrics.go).
	clusters, succeeded, failed atomic.Uint64
	padPackets, padBytes        atomic.Uint64
}

func newProber(s *sendPath) *prober {
	return &prober{path: s, quit: make(chan struct{})}
}

// begin starts a cluster towards goal (bits/s, everything this
// PeerConnection sends) with padding on d's SSRC; false when one runs.
func (p *prober) begin(d *DownTrack, goal float64, now time.Time) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == probeRunning {
		return false
	}
	select {
	case <-p.quit:
		return false
	default:
	}
	if p.recs == nil {
		p.recs = make([]probeRecord, probeRecords)
	}
	p.cluster++
	p.state, p.goal, p.sending = probeRunning, goal, true
	p.start, p.stop, p.deadline = now, now.Add(probeDuration), now.Add(probeDuration+probeSettle)
	p.count, p.bytes, p.result, p.why = 0, 0, 0, ""
	p.active.Store(true)
	p.clusters.Add(1)
	p.wg.Add(1)
	go p.pace(p.cluster, d)
	return true
}

// Verdicts on a cluster that failed without showing a narrow link: its
// arrivals were squeezed, or its last quarter was delayed although the
// cluster arrived at the goal rate. A queue that a narrow link builds holds
// the cluster back below the goal; one that arrived at the goal showed the
// link carries it, and a delay then is as likely a receiver that stamped
// late. Such clusters fail (nothing moves on them) but do not double the
// hold: on a starved test process with an unlimited link, clusters that
// arrived above the goal with their last quarter 60 to 90 ms late doubled
// it to 16 s, three probes in a minute, all failed, kept a subscriber on h.
const (
	whySqueezed  = "arrivals squeezed"
	whyLateQueue = "queue grew, arrived at goal"
)

// inconclusive reports whether the last cluster failed only for one of
// those: the receiver, not the link, said nothing.
func (p *prober) inconclusive() bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state != probeRunning && (p.why == whySqueezed || p.why == whyLateQueue)
}

// poll reports the state of the last cluster; a finished one is reported
// once, then the prober is idle. A cluster whose feedback never came is
// failed at its deadline.
func (p *prober) poll(now time.Time) (probeState, float64) {
	if p == nil {
		return probeIdle, 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == probeRunning && !p.sending {
		p.judge(now) // all feedback may be in already
	}
	if p.state == probeRunning && now.After(p.deadline) {
		p.finish(false, "no feedback", now)
	}
	st := p.state
	if st == probeSucceeded || st == probeFailed {
		p.state = probeIdle
	}
	return st, p.result
}

// recent reports whether a cluster runs or ended less than probeGrace ago.
func (p *prober) recent(now time.Time) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state == probeRunning || (!p.ended.IsZero() && now.Sub(p.ended) < probeGrace)
}

// finish ends the running cluster; p.mu is held.
func (p *prober) finish(ok bool, why string, now time.Time) {
	p.sending = false
	p.ended = now
	p.active.Store(false)
	p.why = why
	if ok {
		p.state = probeSucceeded
		p.succeeded.Add(1)
	} else {
		p.state = probeFailed
		p.failed.Add(1)
	}
	p.path.log.Debug("probe cluster", "ok", ok, "goal", int(p.goal), "arrived", int(p.result), "sent", int(p.sendRate), "packets", p.count, "queueing", p.queued, "why", why, "took", now.Sub(p.start))
}

// pace queues padding for cluster id on d's SSRC, enough each tick that
// all this PeerConnection sends since the cluster began adds up to the
// goal rate (media counts: only the difference is padding).
func (p *prober) pace(id uint32, d *DownTrack) {
	defer p.wg.Done()
	t := time.NewTicker(probeTick)
	defer t.Stop()
	padSize := float64(probePad + 12 + probeOverhead)
	perTick := int(probeMaxPadRate/8*probeTick.Seconds()/padSize) + 1
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
		now := time.Now()
		p.mu.Lock()
		if p.cluster != id || !p.sending || now.After(p.stop) {
			p.sending = p.sending && p.cluster != id
			p.mu.Unlock()
			return
		}
		elapsed := now.Sub(p.start).Seconds()
		deficit := probeOvershoot*p.goal/8*elapsed - float64(p.bytes)
		p.mu.Unlock()
		n := min(int(deficit/padSize), perTick)
		for range n {
			p.path.push(sendItem{d: d, padding: true}, false)
		}
	}
}

// sent records a packet the worker wrote while a cluster runs: its
// transport-wide sequence number and size on the wire (RTP size given).
func (p *prober) sent(seq uint16, size int, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.sending || p.count >= probeRecords {
		return
	}
	if p.count == 0 {
		p.first = seq
	}
	size += probeOverhead
	p.recs[int(seq)%probeRecords] = probeRecord{cluster: p.cluster, seq: seq, size: uint16(size), sent: now.UnixNano()}
	p.count++
	p.bytes += size
}

// feedback takes the subscriber's transport-wide feedback: arrival times
// (or losses) of the cluster's packets, then judges the cluster.
func (p *prober) feedback(fb *rtcp.TransportLayerCC, now time.Time) {
	if p == nil || !p.active.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != probeRunning || p.count == 0 {
		return
	}
	at := int64(fb.ReferenceTime) * 64000 // microseconds
	deltas := fb.RecvDeltas
	eachTWCCStatus(fb, func(seq, sym uint16) {
		r := &p.recs[int(seq)%probeRecords]
		switch sym {
		case rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedLargeDelta:
			if len(deltas) > 0 {
				at += deltas[0].Delta
				deltas = deltas[1:]
			}
			if r.cluster == p.cluster && r.seq == seq {
				r.status, r.arrival = 1, at
			}
		case rtcp.TypeTCCPacketNotReceived:
			if r.cluster == p.cluster && r.seq == seq && r.status == 0 {
				r.status, r.missing = 2, now.UnixNano() // a later report may still say it arrived
			}
		}
	})
	p.judge(now)
}

// judge looks at what is known of the cluster; p.mu is held. Its checks
// (loss, enough data, rate, queue growth, squeeze) are one verdict read in
// order, each with the reason it exists beside it, hence its length.
func (p *prober) judge(now time.Time) {
	var sentN, reported, received, lost int
	var sentBytes, recvBytes, lastSentSize, firstRecvSize int
	var firstSent, lastSent, firstArr, lastArr int64
	for i := range p.count {
		seq := p.first + uint16(i)
		r := &p.recs[int(seq)%probeRecords]
		if r.cluster != p.cluster || r.seq != seq {
			continue
		}
		sentN++
		sentBytes += int(r.size)
		if firstSent == 0 || r.sent < firstSent {
			firstSent = r.sent
		}
		if r.sent >= lastSent {
			lastSent, lastSentSize = r.sent, int(r.size)
		}
		switch r.status {
		case 1:
			reported++
			received++
			recvBytes += int(r.size)
			if received == 1 || r.arrival < firstArr {
				firstArr, firstRecvSize = r.arrival, int(r.size)
			}
			lastArr = max(lastArr, r.arrival)
		case 2:
			// Lost once no report took it back for lossSettle
			// (lossbook.go), or at the deadline: until then, a receiver
			// short of CPU may still report it, late.
			if now.UnixNano()-r.missing >= int64(lossSettle) || now.After(p.deadline) {
				reported++
				lost++
			}
		}
	}
	if reported == 0 {
		return
	}
	queueing := p.queueing(received)
	p.queued = queueing
	// Rates over the spans between the first and the last packet: the
	// last one sent and the first one to arrive do not count towards them.
	sendRate, recvRate := 0.0, 0.0
	if d := lastSent - firstSent; d > 0 {
		sendRate = float64(sentBytes-lastSentSize) * 8e9 / float64(d)
	}
	if d := lastArr - firstArr; d > 0 && received > 1 {
		recvRate = float64(recvBytes-firstRecvSize) * 8e6 / float64(d)
	}
	loss := float64(lost) / float64(reported)
	p.result, p.sendRate = recvRate, sendRate
	if p.sending {
		span := time.Duration(lastArr-firstArr) * time.Microsecond
		if reported >= probeEarlyPackets && span >= probeEarlySpan &&
			(loss > probeEarlyLoss || queueing > 2*probeMaxQueueing) {
			p.finish(false, "link full", now)
		}
		return
	}
	if reported < sentN && !now.After(p.deadline) {
		return // more feedback to come
	}
	span := time.Duration(lastArr-firstArr) * time.Microsecond
	switch {
	case span < probeDuration/2 || float64(recvBytes)*8 < probeEnough*p.goal*probeDuration.Seconds()/2:
		// Too little arrived, or over too short a time, to say anything: a
		// token bucket lets a short burst through at any rate.
		p.finish(false, "too small", now)
	case float64(span) < probeMinSpread*float64(lastSent-firstSent):
		p.finish(false, whySqueezed, now)
	case loss > probeMaxLoss:
		p.finish(false, "loss", now)
	case queueing > probeMaxQueueing && recvRate >= probeEnough*p.goal:
		p.finish(false, whyLateQueue, now)
	case queueing > probeMaxQueueing:
		p.finish(false, "queue grew", now)
	case min(recvRate, sendRate) < probeEnough*p.goal:
		// Arrivals squeezed together look faster than they were sent; what
		// was not sent at the goal rate proves nothing about it (libwebrtc's
		// ProbeBitrateEstimator likewise takes the smaller of the two).
		p.finish(false, "arrived below goal", now)
	default:
		p.finish(true, "", now)
	}
}

// queueing is how much more the last quarter of the cluster's received
// packets was delayed than the least delayed packet of the cluster,
// relative to when each was sent: the smallest delay of the quarter (the
// two clocks differ by a constant, which cancels). p.mu is held.
func (p *prober) queueing(received int) time.Duration {
	quarter := received / 4
	if quarter < 2 {
		return 0
	}
	var allMin, lastMin int64
	k := 0
	for i := range p.count {
		seq := p.first + uint16(i)
		r := &p.recs[int(seq)%probeRecords]
		if r.cluster != p.cluster || r.seq != seq || r.status != 1 {
			continue
		}
		delay := r.arrival - r.sent/1000 // microseconds
		if k == 0 || delay < allMin {
			allMin = delay
		}
		if k >= received-quarter && (k == received-quarter || delay < lastMin) {
			lastMin = delay
		}
		k++
	}
	return time.Duration(lastMin-allMin) * time.Microsecond
}

// close stops a running cluster's pacing and waits for it.
func (p *prober) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	p.active.Store(false)
	p.mu.Unlock()
	p.wg.Wait()
}
