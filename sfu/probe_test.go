package sfu

import (
	"log/slog"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// cluster records n packets of size bytes sent gap apart as one running
// cluster towards goal, then feeds transport-wide feedback saying each
// arrived arrive apart (lost ones not at all), and returns the outcome.
func cluster(t *testing.T, goal float64, n, size int, gap, arrive time.Duration, lost func(i int) bool) (probeState, float64) {
	t.Helper()
	return clusterArriving(t, goal, n, size, gap, func(i int) time.Duration { return time.Duration(i) * arrive }, lost)
}

// clusterArriving is cluster with packet i stamped at arrival(i) after the
// first (non-decreasing).
func clusterArriving(t *testing.T, goal float64, n, size int, gap time.Duration, arrival func(i int) time.Duration, lost func(i int) bool) (probeState, float64) {
	t.Helper()
	_, st, rate := judgedCluster(t, goal, n, size, gap, arrival, lost)
	return st, rate
}

// judgedCluster is clusterArriving that also returns the prober.
func judgedCluster(t *testing.T, goal float64, n, size int, gap time.Duration, arrival func(i int) time.Duration, lost func(i int) bool) (*prober, probeState, float64) {
	t.Helper()
	p := newProber(newSendPath(slog.New(slog.DiscardHandler)))
	start := time.Unix(1000, 0)
	p.recs = make([]probeRecord, probeRecords)
	p.cluster, p.state, p.goal, p.sending = 1, probeRunning, goal, true
	p.start, p.stop, p.deadline = start, start.Add(probeDuration), start.Add(probeDuration+probeSettle)
	p.active.Store(true)
	const base = 65500 // the transport-wide sequence wraps inside the cluster
	for i := range n {
		p.sent(uint16(base+i), size, start.Add(time.Duration(i)*gap))
	}
	p.mu.Lock()
	p.sending = false // the pacing ended
	p.mu.Unlock()
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: base, PacketStatusCount: uint16(n), ReferenceTime: 100}
	last := time.Duration(0)
	for i := range n {
		sym := uint16(rtcp.TypeTCCPacketReceivedLargeDelta)
		if lost != nil && lost(i) {
			sym = rtcp.TypeTCCPacketNotReceived
		}
		fb.PacketChunks = append(fb.PacketChunks, &rtcp.RunLengthChunk{PacketStatusSymbol: sym, RunLength: 1})
		if sym != rtcp.TypeTCCPacketNotReceived {
			at := arrival(i)
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: sym, Delta: (at - last).Microseconds()})
			last = at
		}
	}
	at := start.Add(time.Duration(n)*gap + 50*time.Millisecond)
	p.feedback(fb, at)
	st, rate := p.poll(at)
	if st == probeRunning { // losses settle (lossbook.go)
		st, rate = p.poll(at.Add(lossSettle))
	}
	return p, st, rate
}

// A cluster that arrives as fast as it was sent, at the goal, succeeds; one
// the link delivered at half the rate (a queue grew), one that lost a fifth
// of its packets, a short burst, and one below its goal fail.
func TestProbeClusterJudgedFromFeedback(t *testing.T) {
	// 100 packets of 956 bytes (1000 on the wire) 4 ms apart: 2 Mbit/s.
	st, rate := cluster(t, 1.8e6, 100, 956, 4*time.Millisecond, 4*time.Millisecond, nil)
	if st != probeSucceeded || rate < 1.9e6 || rate > 2.1e6 {
		t.Errorf("a cluster that kept pace: %v at %.0f bit/s, want succeeded at about 2 Mbit/s", st, rate)
	}
	st, rate = cluster(t, 1.8e6, 100, 956, 4*time.Millisecond, 8*time.Millisecond, nil)
	if st != probeFailed || rate > 1.1e6 {
		t.Errorf("a cluster delivered at half its rate: %v at %.0f bit/s, want failed at about 1 Mbit/s", st, rate)
	}
	st, _ = cluster(t, 1.8e6, 100, 956, 4*time.Millisecond, 4*time.Millisecond, func(i int) bool { return i%5 == 0 })
	if st != probeFailed {
		t.Errorf("a cluster that lost a fifth: %v, want failed", st)
	}
	// A short burst (a token bucket lets one through at any rate) says
	// nothing, however fast it arrived.
	st, _ = cluster(t, 1.8e6, 20, 956, time.Millisecond, time.Millisecond, nil)
	if st != probeFailed {
		t.Errorf("a 20 ms burst: %v, want failed", st)
	}
	// A goal above what was sent cannot be confirmed.
	st, _ = cluster(t, 3e6, 100, 956, 4*time.Millisecond, 4*time.Millisecond, nil)
	if st != probeFailed {
		t.Errorf("a cluster below its goal: %v, want failed", st)
	}
}

// A receiver that stalls stamps the packets it reads late, all at once: a
// cluster that a 1 Mbit/s link delivered (a queue grew behind it), read
// only after 400 ms, has its first half squeezed into one instant and
// looks faster than the link. The least delayed packet is still the
// link's, and the last quarter was delayed 100 ms more: it fails.
func TestProbeClusterSqueezedByAStallFails(t *testing.T) {
	// 100 packets of 956 bytes (1000 on the wire) sent 4 ms apart (2
	// Mbit/s), delivered 8 ms apart (1 Mbit/s), stamped no earlier than 400 ms.
	stalled := func(i int) time.Duration { return max(time.Duration(i)*8*time.Millisecond, 400*time.Millisecond) }
	st, rate := clusterArriving(t, 1.8e6, 100, 956, 4*time.Millisecond, stalled, nil)
	if rate < 1.8e6 {
		t.Fatalf("the squeezed cluster arrived at %.0f bit/s: the case is meant to look fast enough", rate)
	}
	if st != probeFailed {
		t.Errorf("a queue hidden by a stalled receiver: %v, want failed", st)
	}
	// A longer stall, until 560 ms, squeezes most of the cluster into one
	// instant: the few packets after it span 232 ms, look fast, and their
	// delays grew only 20 ms past the last stalled one. The arrivals'
	// span, shorter than the 396 ms it took to send them, gives it away.
	late := func(i int) time.Duration { return max(time.Duration(i)*8*time.Millisecond, 560*time.Millisecond) }
	if st, _ := clusterArriving(t, 1.8e6, 100, 956, 4*time.Millisecond, late, nil); st != probeFailed {
		t.Errorf("a cluster squeezed by a long stall: %v, want failed", st)
	}
	// A short stall (60 ms) on a link that kept pace (arrivals 4 ms
	// apart) hides nothing: the cluster succeeds.
	onTime := func(i int) time.Duration { return max(time.Duration(i)*4*time.Millisecond, 60*time.Millisecond) }
	if st, _ := clusterArriving(t, 1.8e6, 100, 956, 4*time.Millisecond, onTime, nil); st != probeSucceeded {
		t.Errorf("a short stall on a link that kept pace: %v, want succeeded", st)
	}
}

// probeReport is a transport-wide feedback for packets base+from to
// base+to-1: received at arrival(i) after the reference time, or not
// received where missing(i).
func probeReport(base uint16, from, to int, arrival func(i int) time.Duration, missing func(i int) bool) *rtcp.TransportLayerCC {
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: base + uint16(from), PacketStatusCount: uint16(to - from), ReferenceTime: 100}
	last := time.Duration(0)
	for i := from; i < to; i++ {
		sym := uint16(rtcp.TypeTCCPacketReceivedLargeDelta)
		if missing(i) {
			sym = rtcp.TypeTCCPacketNotReceived
		}
		fb.PacketChunks = append(fb.PacketChunks, &rtcp.RunLengthChunk{PacketStatusSymbol: sym, RunLength: 1})
		if sym != rtcp.TypeTCCPacketNotReceived {
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: sym, Delta: (arrival(i) - last).Microseconds()})
			last = arrival(i)
		}
	}
	return fb
}

// A receiver short of CPU records its audio before video packets sent
// earlier: while a cluster runs, a feedback reports a fifth of its first
// 60 packets not received, and the next one reports them received (stamped
// late, with packet 60). That is not a full link: the cluster
// runs on and succeeds, where it used to be given up at once ("link
// full") and the next try held back twice as long.
func TestProbeLateArrivalsAreNotLoss(t *testing.T) {
	p := newProber(newSendPath(slog.New(slog.DiscardHandler)))
	start := time.Unix(1000, 0)
	p.recs = make([]probeRecord, probeRecords)
	p.cluster, p.state, p.goal, p.sending = 1, probeRunning, 1.8e6, true
	p.start, p.stop, p.deadline = start, start.Add(probeDuration), start.Add(probeDuration+probeSettle)
	p.active.Store(true)
	const base = 65500
	// 100 packets of 956 bytes (1000 on the wire) 4 ms apart: 2 Mbit/s,
	// delivered as they were sent, 48 to 59 stamped 40 ms late.
	onTime := func(i int) time.Duration { return time.Duration(i) * 4 * time.Millisecond }
	stamped := func(i int) time.Duration {
		if i >= 48 && i < 60 {
			return 240*time.Millisecond + onTime(i-48)/8
		}
		return onTime(i)
	}
	for i := range 60 {
		p.sent(uint16(base+i), 956, start.Add(onTime(i)))
	}
	at := start.Add(250 * time.Millisecond)
	p.feedback(probeReport(base, 0, 60, onTime, func(i int) bool { return i >= 48 && i < 60 }), at)
	if st, _ := p.poll(at); st != probeRunning {
		t.Fatalf("a cluster whose late packets were reported missing: %v at once, want running", st)
	}
	for i := 60; i < 100; i++ {
		p.sent(uint16(base+i), 956, start.Add(onTime(i)))
	}
	p.mu.Lock()
	p.sending = false // the pacing ended
	p.mu.Unlock()
	at = start.Add(450 * time.Millisecond)
	p.feedback(probeReport(base, 48, 100, stamped, func(int) bool { return false }), at)
	if st, rate := p.poll(at); st != probeSucceeded {
		t.Errorf("all of it arrived at %.0f bit/s: %v, want succeeded", rate, st)
	}
}

// A cluster that arrived at its goal rate but whose last quarter was
// stamped 60 ms late (a receiver short of CPU) fails, yet says nothing
// about the link: the allocator does not double its hold for it. One that
// a link half as fast held back (a queue grew, the rate fell below the
// goal) fails and counts.
func TestProbeLateQueueAtGoalIsInconclusive(t *testing.T) {
	// 100 packets of 956 bytes (1000 on the wire) sent 4 ms apart: 2 Mbit/s.
	late := func(i int) time.Duration {
		d := time.Duration(i) * 4 * time.Millisecond
		if i >= 75 {
			d += 60 * time.Millisecond
		}
		return d
	}
	p, st, rate := judgedCluster(t, 1.8e6, 100, 956, 4*time.Millisecond, late, nil)
	if st != probeFailed || rate < probeEnough*1.8e6 {
		t.Fatalf("a late last quarter: %v at %.0f bit/s, want failed at the goal rate or more", st, rate)
	}
	if !p.inconclusive() {
		t.Errorf("a cluster that arrived at its goal, its last quarter stamped late: counted against the link (%q), want inconclusive", p.why)
	}
	slow := func(i int) time.Duration { return time.Duration(i) * 8 * time.Millisecond }
	p, st, _ = judgedCluster(t, 1.8e6, 100, 956, 4*time.Millisecond, slow, nil)
	if st != probeFailed || p.inconclusive() {
		t.Errorf("a cluster a narrow link held back: %v, inconclusive %v (%q); want failed and conclusive", st, p.inconclusive(), p.why)
	}
}
