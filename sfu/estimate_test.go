package sfu

import (
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// gccRecords stands in for GCC's recorder: what flush hands it.
type gccRecords struct {
	seqs  []uint16
	sizes []int
}

func (g *gccRecords) Write(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
	v := h.GetExtension(recordExt)
	g.seqs = append(g.seqs, uint16(v[0])<<8|uint16(v[1]))
	g.sizes = append(g.sizes, h.MarshalSize()+len(p))
	return len(p), nil
}

// The send path's packets reach GCC as one record per run of up to
// recordPackets consecutive transport-wide sequence numbers, each with its
// run's bytes, and only at flush: a 33-packet frame is five records.
func TestEstimatorRecordsRuns(t *testing.T) {
	e := newEstimator(logging.NewDefaultLoggerFactory())
	defer e.close()
	g := &gccRecords{}
	e.gcc = g
	for i := range 33 {
		e.sent(uint16(65530+i), 1000) // across the wrap of the sequence numbers
	}
	e.sent(100, 500) // not consecutive: a run of its own
	if len(g.seqs) != 0 {
		t.Fatalf("records before flush: %v", g.seqs)
	}
	e.flush()
	wantSeqs := []uint16{1, 9, 17, 25, 26, 100}
	wantSizes := []int{8000, 8000, 8000, 8000, 1000, 500}
	if len(g.seqs) != len(wantSeqs) {
		t.Fatalf("records %v sizes %v, want %v %v", g.seqs, g.sizes, wantSeqs, wantSizes)
	}
	for i := range wantSeqs {
		if g.seqs[i] != wantSeqs[i] || g.sizes[i] != wantSizes[i] {
			t.Fatalf("records %v sizes %v, want %v %v", g.seqs, g.sizes, wantSeqs, wantSizes)
		}
	}
	e.flush()
	if len(g.seqs) != len(wantSeqs) {
		t.Fatalf("a second flush recorded again: %v", g.seqs)
	}
}

// Recording what was sent allocates nothing in Huddle's code, whatever
// GCC itself does with a record.
func TestEstimatorSentAllocatesNothing(t *testing.T) {
	e := newEstimator(logging.NewDefaultLoggerFactory())
	defer e.close()
	e.gcc = &gccRecords{seqs: make([]uint16, 0, 1<<16), sizes: make([]int, 0, 1<<16)}
	var seq uint16
	allocs := leastAllocs(func() {
		for range 33 {
			seq++
			e.sent(seq, 1200)
		}
		e.flush()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per frame", allocs)
	}
}

// After a move down, the loss reported for packets sent before it does
// not count: a drop-tail queue that overflowed at the old rate reports its
// losses for as long as it takes to drain.
func TestLossBeforeTheFenceDoesNotCount(t *testing.T) {
	e := newEstimator(logging.NewDefaultLoggerFactory())
	defer e.close()
	// Packets 65530 to 9 (the sequence wraps) were sent; the first eight,
	// at the old rate, were all lost; the fence went up after the eighth.
	for i := range uint16(16) {
		e.sent(65530+i, 1000)
		if i == 7 {
			e.flush()
			e.fenceLoss()
		}
	}
	e.flush()
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: 65530, PacketStatusCount: 16, PacketChunks: []rtcp.PacketStatusChunk{
		&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 8},
		&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 8},
	}}
	for range 8 {
		fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 1000})
	}
	now := time.Now()
	fenced, open := &lossBook{}, &lossBook{}
	fenced.record(fb, e.fence.Load(), now)
	open.record(fb, 0, now)
	if rx, lost, _ := fenced.take(e.fence.Load(), now.Add(lossSettle)); rx != 8 || lost != 0 {
		t.Errorf("past the fence: %d received, %d lost; want 8 and 0", rx, lost)
	}
	if rx, lost, _ := open.take(0, now.Add(lossSettle)); rx != 8 || lost != 8 {
		t.Errorf("without a fence: %d received, %d lost; want 8 and 8", rx, lost)
	}
}

// twccReport is a transport-wide feedback from base on: true for a packet
// received (1 ms after the one before), false for one not received.
func twccReport(base uint16, received []bool) *rtcp.TransportLayerCC {
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: base, PacketStatusCount: uint16(len(received)), ReferenceTime: 1}
	for _, ok := range received {
		sym := uint16(rtcp.TypeTCCPacketNotReceived)
		if ok {
			sym = rtcp.TypeTCCPacketReceivedSmallDelta
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: sym, Delta: 1000})
		}
		fb.PacketChunks = append(fb.PacketChunks, &rtcp.RunLengthChunk{PacketStatusSymbol: sym, RunLength: 1})
	}
	return fb
}

// A receiver short of CPU reads its audio stream before video packets
// sent earlier: a feedback says 8 of 20 packets were not received, and
// the next one, 100 ms later, reports them received (its recorder rewinds
// to a late packet). That is not loss, and the link is not congested:
// counted as loss, it held an unlimited link "congested" and its subscriber
// on a low layer (TestShapedLinkLowLayerAndBack under load). Loss that no
// later report takes back still counts.
func TestLateArrivalIsNotLoss(t *testing.T) {
	e := newEstimator(logging.NewDefaultLoggerFactory())
	defer e.close()
	base := uint16(65530) // the sequence wraps
	for i := range uint16(40) {
		e.sent(base+i, 1000)
	}
	e.flush()
	first := make([]bool, 20)
	for i := range first {
		first[i] = i < 8 || i >= 16 // 8 to 15 still in the video reader's buffer
	}
	e.feedback(twccReport(base, first))
	e.feedback(twccReport(base+8, []bool{true, true, true, true, true, true, true, true, true, true, true, true}))
	now := time.Now()
	if _, _, congested := e.sample(0, now.Add(time.Second)); congested {
		t.Errorf("packets reported missing, then received: congested, want not")
	}
	// Packets 14 to 23 of the next twenty (one in two) never arrive, however
	// many reports follow.
	next := make([]bool, 20)
	for i := range next {
		next[i] = i%2 == 0
	}
	e.feedback(twccReport(base+20, next))
	e.feedback(twccReport(base+40, nil))
	if _, _, congested := e.sample(0, now.Add(2*time.Second)); !congested {
		t.Errorf("half the packets lost for good: not congested, want congested")
	}
}
