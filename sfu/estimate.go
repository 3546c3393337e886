package sfu

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// Estimator bounds (bits/s). The initial estimate lets a new subscriber
// start at a middle layer rather than at the top of a link it does not know.
const (
	initialEstimate = 1_000_000
	minEstimate     = 50_000
	maxEstimate     = 20_000_000
	// congestionLoss is the loss ratio (GCC's average) above which a link
	// counts as pushing back; GCC itself decreases above 0.1.
	congestionLoss = 0.05
)

// estimator is one subscriber PeerConnection's downlink estimate: Pion's
// send-side GCC fed with the subscriber's transport-wide feedback, or the
// REMB a client sends instead. The send path itself is the pacer (one batch
// per wake-up, audio first).
//
// How GCC learns send times (the data path; measurements in
// docs/PERFORMANCE.md): Pion's GCC stamps a packet's departure with
// time.Now() when its stream writer is called, and its feedback adapter
// then allocates two objects and does a map insert and delete for that
// packet. Called for every packet sent to every subscriber, that was
// about two allocations per delivered packet and, with the feedback it
// led to, an eighth of the server's CPU samples. gcc's API offers no other way in (the adapter is internal, and a
// departure cannot be given after the fact), so the send path writes
// packets straight to the subscriber's stream and tells the estimator
// only what it sent (sent: a few stores, no allocation). At the end of
// each batch, after the burst left, flush hands GCC one record per run of
// up to recordPackets consecutive packets of the batch: the run's last
// transport-wide sequence number, stamped now (the burst's true departure
// under GSO), with the run's bytes. GCC groups packets sent within 5 ms
// into one arrival group anyway, so the delay estimate sees the same
// groups; the acknowledged rate sees the same bytes; the loss average is
// sampled from one packet of each run (low-rate streams, one or two
// packets per batch, are not sampled at all).
type estimator struct {
	bwe   *gcc.SendSideBWE
	gcc   interceptor.RTPWriter // GCC's pacer: records a send, then discards (recordSink)
	attrs interceptor.Attributes

	twccSeen  atomic.Bool
	feedbacks atomic.Uint64 // TWCC feedback packets since the last sample
	remb      atomic.Uint64 // the client's last REMB, bits/s; 0: none
	// Packets the feedback since the last sample reported received and
	// lost (lossbook.go: a loss counts once it has settled). GCC's own loss
	// average is refreshed only when its delay controller emits, which it
	// does not while it holds (a queue draining), so it can stay high long
	// after the loss ended.
	loss lossBook
	// lastSeq is 1<<16 | the transport-wide sequence number of the last
	// packet flushed (0: none yet); fence is 1<<16 | the first one whose
	// loss counts (0: all). The allocator raises the fence when a video
	// has moved down: what a drop-tail queue lost of the old rate is
	// reported for as long as the queue takes to drain, seconds at a low
	// rate, and says nothing about whether the new rate fits (libwebrtc
	// and LiveKit likewise do not act on loss from before a change).
	lastSeq, fence atomic.Uint32

	// The send path's worker only: runs of this batch not yet given to GCC.
	runs [sendBatch]sentRun
	nrun int
	hdr  rtp.Header // what GCC's recorder parses: the run's sequence number
	seq  [2]byte

	// The allocation loop's view, for congestion: the last estimate and
	// the bytes sent at the last look.
	mu        sync.Mutex
	lastEst   float64
	lastRaw   float64 // the last estimate before headroom, after heldGrowth
	lastSent  uint64
	lastAt    time.Time
	congest   bool
	lossy     bool    // the congestion was loss, not only delay
	lastDelay float64 // GCC's last delay measurement: unchanged means its stats are stale
	acked     ackedRate
}

// sentRun is consecutive packets of one batch, recorded in GCC as one.
type sentRun struct {
	last  uint16 // transport-wide sequence number of the run's last packet
	n     int
	bytes int
}

// recordPackets is the most packets one GCC record stands for: a 33-packet
// video frame becomes five records instead of 33 (allocations and map
// work in GCC per delivered packet: 2/recordPackets).
const recordPackets = 8

// recordSSRC and recordExt name GCC's one stream: records never reach a
// wire, so they need not match the subscriber's SSRCs or extension ids.
const (
	recordSSRC = 1
	recordExt  = 1
)

// recordPad gives a record its size: GCC counts len(payload) and reads
// nothing of it.
var recordPad [recordPackets * maxPacketSize]byte

func newEstimator(lf logging.LoggerFactory) *estimator {
	pacer := gcc.NewNoOpPacer()
	bwe, err := gcc.NewSendSideBWE(
		gcc.SendSideBWEInitialBitrate(initialEstimate),
		gcc.SendSideBWEMinBitrate(minEstimate),
		gcc.SendSideBWEMaxBitrate(maxEstimate),
		gcc.SendSideBWEPacer(pacer),
		gcc.WithLoggerFactory(lf),
	)
	if err != nil {
		return nil // only bad options fail
	}
	e := &estimator{bwe: bwe, gcc: pacer, attrs: interceptor.Attributes{}}
	info := &interceptor.StreamInfo{SSRC: recordSSRC, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: recordExt}}}
	bwe.AddStream(info, recordSink{})
	e.hdr = rtp.Header{Version: 2, SSRC: recordSSRC}
	_ = e.hdr.SetExtension(recordExt, e.seq[:]) // allocates the extension slot once
	return e
}

// recordSink is where GCC's recorder passes records on: nowhere.
type recordSink struct{}

func (recordSink) Write(_ *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
	return len(p), nil
}

// sent notes one packet the send path wrote: its transport-wide sequence
// number and its size on the wire (header and payload). Worker only; it
// allocates nothing.
func (e *estimator) sent(seq uint16, size int) {
	if e == nil {
		return
	}
	if e.nrun > 0 {
		r := &e.runs[e.nrun-1]
		if r.n < recordPackets && seq == r.last+1 {
			r.last, r.n, r.bytes = seq, r.n+1, r.bytes+size
			return
		}
	}
	if e.nrun == len(e.runs) {
		e.flush()
	}
	e.runs[e.nrun] = sentRun{last: seq, n: 1, bytes: size}
	e.nrun++
}

// flush gives GCC the runs sent since the last flush; the send path calls
// it after each batch has left. Worker only.
func (e *estimator) flush() {
	if e == nil {
		return
	}
	for i := range e.nrun {
		r := e.runs[i]
		e.seq[0], e.seq[1] = byte(r.last>>8), byte(r.last)
		pad := max(0, min(r.bytes-e.hdr.MarshalSize(), len(recordPad)))
		_, _ = e.gcc.Write(&e.hdr, recordPad[:pad], e.attrs) // fails only for an unknown stream
		e.loss.sentRun(r.last, r.n, r.bytes)
	}
	if e.nrun > 0 {
		e.lastSeq.Store(1<<16 | uint32(e.runs[e.nrun-1].last))
	}
	e.nrun = 0
}

// feedback takes the subscriber's RTCP that estimates use.
func (e *estimator) feedback(p rtcp.Packet) {
	if e == nil {
		return
	}
	switch p := p.(type) {
	case *rtcp.TransportLayerCC:
		e.twccSeen.Store(true)
		e.feedbacks.Add(1)
		e.loss.record(p, e.fence.Load(), time.Now())
		_ = e.bwe.WriteRTCP([]rtcp.Packet{p}, nil) // fails only once closed
	case *rtcp.ReceiverEstimatedMaximumBitrate:
		e.remb.Store(uint64(p.Bitrate))
	}
}

// estimate is the downlink estimate in bits/s, and whether there is one:
// GCC once the client sends transport-wide feedback, else its REMB.
func (e *estimator) estimate() (float64, bool) {
	if e == nil {
		return math.Inf(1), false
	}
	if e.twccSeen.Load() {
		return float64(e.bwe.GetTargetBitrate()), true
	}
	if r := e.remb.Load(); r > 0 {
		return float64(r), true
	}
	return math.Inf(1), false
}

// sample is the allocation loop's view of the link, once per tick: the
// bitrate media may use (headroom applied), whether there is an estimate at all, and whether
// the link pushes back (loss above congestionLoss, or delay growing).
//
// An increase takes the estimate no further than appLimitedReach times the
// acknowledged rate (heldGrowth), so on a quiet link the estimate says what
// the link has shown it carries: the allocator moves up past that by
// probing (probe.go) and backs off on pushback.
func (e *estimator) sample(sentBytes uint64, now time.Time) (est float64, known, congested bool) {
	if e == nil {
		return math.Inf(1), false, false
	}
	est, known = e.estimate()
	if !known {
		return est, false, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	dt := now.Sub(e.lastAt)
	if dt < allocInterval/2 {
		return e.lastEst, true, e.congest
	}
	e.lastSent, e.lastAt = sentBytes, now
	e.congest, e.lossy = false, false
	if fb := e.feedbacks.Swap(0); fb > 0 && e.twccSeen.Load() {
		// Only fresh feedback counts: the loss is counted from the
		// feedback since the last sample (what settled is kept for a sample
		// that has some), and GCC's delay verdict only when GCC has
		// emitted since (its stats are kept while it holds).
		rx, lost, bytes := e.loss.take(e.fence.Load(), now)
		e.acked.add(bytes, now)
		st := e.bwe.GetStats()
		usage, _ := st["usage"].(string)
		delay, _ := st["delayMeasurement"].(float64)
		fresh := delay != e.lastDelay
		e.lastDelay = delay
		e.lossy = float64(lost) > congestionLoss*float64(rx+lost)
		e.congest = e.lossy || (fresh && usage == "overuse")
		if d, ok := st["delayTargetBitrate"].(int); ok && d > 0 && e.congest && !e.lossy {
			// Over-use by delay alone: GCC's target is the smaller of its
			// delay- and loss-based parts, and the loss-based part counts
			// every packet a feedback reported missing, late ones too
			// (lossbook.go), so after a starved receiver's late reports it
			// sat at a fifth of what the link carried and a delay blip sent
			// f straight to q. The delay-based part is 85% of what arrived.
			est = float64(d)
		}
	}
	if r, ok := e.acked.rate(); ok && e.twccSeen.Load() {
		est = heldGrowth(e.lastRaw, est, r)
	}
	e.lastRaw = est
	est *= headroom
	if r, ok := e.acked.rate(); ok && e.lossy {
		// A link that loses packets carries what arrived: GCC's own target
		// can stay far above it for as long as its delay controller does
		// not emit (arrivals seconds late behind a full queue), and that
		// held video on a layer the link could never carry (acked.go).
		est = min(est, r*ackedReach)
	}
	e.lastEst = est
	return est, true, e.congest
}

// fenceLoss makes loss count only for packets sent from now on.
func (e *estimator) fenceLoss() {
	if e == nil {
		return
	}
	if s := e.lastSeq.Load(); s != 0 {
		e.fence.Store(1<<16 | uint32(uint16(s)+1))
	}
}

// lossyNow reports whether the last sample's congestion was loss (more than
// congestionLoss of the packets reported), not only growing delay.
func (e *estimator) lossyNow() bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lossy
}

func (e *estimator) close() {
	if e != nil {
		_ = e.bwe.Close()
	}
}

// eachTWCCStatus calls fn with the transport-wide sequence number and the
// status symbol of every packet a feedback reports, in order (the run-length
// and status-vector chunks unpacked, their padding past the status count
// left out).
func eachTWCCStatus(fb *rtcp.TransportLayerCC, fn func(seq, sym uint16)) {
	left := int(fb.PacketStatusCount)
	seq := fb.BaseSequenceNumber
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for i := 0; i < int(c.RunLength) && left > 0; i++ {
				fn(seq, c.PacketStatusSymbol)
				seq++
				left--
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList {
				if left <= 0 {
					break
				}
				fn(seq, sym)
				seq++
				left--
			}
		}
	}
}
