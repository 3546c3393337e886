package sfu

import (
	"testing"

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
	if rx, lost := twccCounts(fb, e.fence.Load()); rx != 8 || lost != 0 {
		t.Errorf("past the fence: %d received, %d lost; want 8 and 0", rx, lost)
	}
	if rx, lost := twccCounts(fb, 0); rx != 8 || lost != 8 {
		t.Errorf("without a fence: %d received, %d lost; want 8 and 8", rx, lost)
	}
}
