package sfu

import (
	"errors"
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
// REMB a client sends instead. Packets reach the wire through GCC's no-op
// pacer, which records their send times for the feedback; the send path
// itself is the pacer (one batch per wake-up, audio first).
type estimator struct {
	bwe   *gcc.SendSideBWE
	out   interceptor.RTPWriter // GCC's pacer: records, then writes to the stream's writer
	attrs interceptor.Attributes

	twccSeen  atomic.Bool
	feedbacks atomic.Uint64 // TWCC feedback packets since the last sample
	remb      atomic.Uint64 // the client's last REMB, bits/s; 0: none
	// Packets the feedback since the last sample reported received and
	// lost. GCC's own loss average is refreshed only when its delay
	// controller emits, which it does not while it holds (a queue draining),
	// so it can stay high long after the loss ended.
	fbReceived, fbLost atomic.Uint64

	// The allocation loop's view, for congestion: the last estimate and
	// the bytes sent at the last look.
	mu        sync.Mutex
	lastEst   float64
	lastSent  uint64
	lastAt    time.Time
	congest   bool
	lastDelay float64 // GCC's last delay measurement: unchanged means its stats are stale
}

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
	return &estimator{bwe: bwe, out: pacer, attrs: interceptor.Attributes{}}
}

// addStream routes a downtrack's packets through GCC's recorder; twcc is
// the subscriber's id for the transport-wide sequence extension.
func (e *estimator) addStream(ssrc uint32, twcc uint8, w interface {
	WriteRTP(*rtp.Header, []byte) (int, error)
}) {
	if e == nil || twcc == 0 {
		return
	}
	info := &interceptor.StreamInfo{SSRC: ssrc, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: int(twcc)}}}
	e.bwe.AddStream(info, interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
		if h.Padding && h.PaddingSize == 0 && len(p) > 0 {
			// A probe's padding, given to GCC as payload so that it counts
			// (DownTrack.write): on the wire it is padding again.
			h.PaddingSize = p[len(p)-1]
			p = p[:len(p)-int(h.PaddingSize)]
		}
		return w.WriteRTP(h, p)
	}))
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
		rx, lost := twccCounts(p)
		e.fbReceived.Add(uint64(rx))
		e.fbLost.Add(uint64(lost))
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
// GCC never lets its target outgrow 1.5 times what arrives, so on a quiet
// link the usable rate is at least what is being delivered: the allocator
// moves up by trying the next layer (its probe) and backs off on pushback.
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
	e.congest = false
	rx, lost := e.fbReceived.Swap(0), e.fbLost.Swap(0)
	if fb := e.feedbacks.Swap(0); fb > 0 && e.twccSeen.Load() {
		// Only fresh feedback counts: the loss is counted from the
		// feedback since the last sample, and GCC's delay verdict only
		// when GCC has emitted since (its stats are kept while it holds).
		st := e.bwe.GetStats()
		usage, _ := st["usage"].(string)
		delay, _ := st["delayMeasurement"].(float64)
		fresh := delay != e.lastDelay
		e.lastDelay = delay
		e.congest = float64(lost) > congestionLoss*float64(rx+lost) || (fresh && usage == "overuse")
	}
	est *= headroom
	e.lastEst = est
	return est, true, e.congest
}

func (e *estimator) close() {
	if e != nil {
		_ = e.bwe.Close()
	}
}

// write sends a packet through GCC's recorder; false when the stream is
// not (yet) known to it, and the caller writes directly.
func (e *estimator) write(h *rtp.Header, payload []byte) (bool, error) {
	_, err := e.out.Write(h, payload, e.attrs)
	if errors.Is(err, gcc.ErrUnknownStream) {
		return false, nil
	}
	return true, err
}

// twccCounts counts the packets a transport-wide feedback reports received
// and not received.
func twccCounts(fb *rtcp.TransportLayerCC) (received, lost int) {
	left := int(fb.PacketStatusCount)
	count := func(sym uint16) {
		if sym == rtcp.TypeTCCPacketNotReceived {
			lost++
		} else {
			received++
		}
		left--
	}
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for i := 0; i < int(c.RunLength) && left > 0; i++ {
				count(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList {
				if left <= 0 {
					break
				}
				count(sym)
			}
		}
	}
	return received, lost
}
