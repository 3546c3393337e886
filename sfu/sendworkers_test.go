package sfu

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// gateWriter holds every write until release, then records.
type gateWriter struct {
	open    chan struct{}
	once    sync.Once
	entered atomic.Int64
	rec     recorder
}

func newGateWriter() *gateWriter { return &gateWriter{open: make(chan struct{})} }

func (g *gateWriter) release() { g.once.Do(func() { close(g.open) }) }

func (g *gateWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	g.entered.Add(1)
	<-g.open
	return g.rec.WriteRTP(h, p)
}

func (g *gateWriter) Write(b []byte) (int, error) { return len(b), nil }

// pooledTrack is one subscriber of f whose send path is run by w, as a path
// whose ICE pair is UDP is.
func pooledTrack(f *Forwarder, w *sendWorkers, ssrc uint32, wr webrtc.TrackLocalWriter) (*DownTrack, *sendPath) {
	ready := &atomic.Bool{}
	ready.Store(true)
	s := newSendPath(slog.New(slog.DiscardHandler))
	s.workers = w
	a := netip.MustParseAddrPort("127.0.0.1:9")
	s.remote.Store(&a)
	go s.run()
	d := newDownTrack(f, s, ready)
	d.writer, d.ssrc, d.pt = wr, ssrc, 111
	f.addDownTrack(d)
	return d, s
}

func audioPacket(i int) []byte {
	return []byte{0x80, 111, byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, 0, 5, 1}
}

// While the workers are busy, paths that become ready wake nobody: a
// worker that gets free takes them in turn, each with everything queued
// meanwhile. Every packet reaches every subscriber, in order.
func TestSendWorkersWakeOncePerBusyPeriod(t *testing.T) {
	w := newSendWorkers(1)
	defer w.close()
	waitWorkersWaiting(t, w, 1)
	var plis atomic.Int64
	fGate := testForwarder(webrtc.RTPCodecTypeAudio, &plis)
	f := testForwarder(webrtc.RTPCodecTypeAudio, &plis)

	gate := newGateWriter()
	_, gated := pooledTrack(fGate, w, 1, gate)
	defer gated.close()
	defer gate.release() // before the paths close, should the test fail
	const subscribers = 20
	recs := make([]*recorder, subscribers)
	for i := range recs {
		recs[i] = &recorder{}
		_, s := pooledTrack(f, w, uint32(10+i), recs[i])
		defer s.close()
	}

	var p packet
	fGate.ingest(fGate.base, &p, audioPacket(0))
	// The one worker is now inside the gated subscriber's write.
	deadlinePoll(t, func() bool { return gate.entered.Load() == 1 })
	if got := w.wakeups.Load(); got != 1 {
		t.Errorf("%d worker wake-ups for the first packet, want 1", got)
	}
	const packets = 40
	for i := range packets {
		f.ingest(f.base, &p, audioPacket(i))
	}
	if got := w.wakeups.Load(); got != 1 {
		t.Errorf("%d worker wake-ups while the only worker was busy, want still 1", got)
	}
	gate.release()
	for i, r := range recs {
		deadlinePoll(t, func() bool { return r.n.Load() == packets })
		r.mu.Lock()
		for j, h := range r.pkts {
			if j > 0 && h.SequenceNumber != r.pkts[j-1].SequenceNumber+1 {
				t.Errorf("subscriber %d: packet %d has sequence number %d after %d", i, j, h.SequenceNumber, r.pkts[j-1].SequenceNumber)
			}
		}
		r.mu.Unlock()
	}
	// Every path was run by the worker alone.
	var own uint64
	for _, d := range *f.downs.Load() {
		own += d.path.wakes.Load()
	}
	if own != 0 {
		t.Errorf("%d wake-ups of paths' own goroutines, want 0 for UDP paths", own)
	}
}

func waitWorkersWaiting(t *testing.T, w *sendWorkers, n int) {
	t.Helper()
	deadlinePoll(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.waiting == n
	})
}

// A path with no UDP pair (ICE-TCP, or before ICE chose one) runs on its
// own goroutine: a write that blocks there holds no worker, and the
// others' packets keep flowing.
func TestSendWorkersLeaveBlockingPathsToTheirOwnGoroutine(t *testing.T) {
	w := newSendWorkers(1)
	defer w.close()
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeAudio, &plis)

	gate := newGateWriter()
	_, tcp := pooledTrack(f, w, 1, gate)
	tcp.remote.Store(nil) // as setRemote leaves it for a TCP pair
	defer tcp.close()
	defer gate.release()
	rec := &recorder{}
	_, udp := pooledTrack(f, w, 2, rec)
	defer udp.close()

	var p packet
	const packets = 50
	for i := range packets {
		f.ingest(f.base, &p, audioPacket(i))
	}
	deadlinePoll(t, func() bool { return rec.n.Load() == packets })
	deadlinePoll(t, func() bool { return gate.entered.Load() == 1 })
	if tcp.wakes.Load() != 1 {
		t.Errorf("the TCP path's own goroutine woke %d times, want 1", tcp.wakes.Load())
	}
}

// Closing a path waits for the worker running its batch; closing the
// workers hands paths still waiting for a turn to their own goroutines, so
// nothing is stranded and every close returns.
func TestSendWorkersClose(t *testing.T) {
	w := newSendWorkers(1)
	var plis atomic.Int64
	fGate := testForwarder(webrtc.RTPCodecTypeAudio, &plis)
	f := testForwarder(webrtc.RTPCodecTypeAudio, &plis)
	gate := newGateWriter()
	defer gate.release()
	_, gated := pooledTrack(fGate, w, 1, gate)
	rec := &recorder{}
	_, waiting := pooledTrack(f, w, 2, rec)

	var p packet
	fGate.ingest(fGate.base, &p, audioPacket(0))
	deadlinePoll(t, func() bool { return gate.entered.Load() == 1 })
	f.ingest(f.base, &p, audioPacket(0))
	// The worker is held by the gated path; the other waits its turn.
	var closed sync.WaitGroup
	closed.Add(2)
	var gatedClosed atomic.Bool
	go func() { defer closed.Done(); gated.close(); gatedClosed.Store(true) }()
	go func() { defer closed.Done(); w.close() }()
	deadlinePoll(t, func() bool {
		gated.mu.Lock()
		defer gated.mu.Unlock()
		return gated.closed
	})
	deadlinePoll(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.closed
	})
	if gatedClosed.Load() {
		t.Error("close returned while a worker was inside the path's batch")
	}
	gate.release()
	closed.Wait()
	// The waiting path's packet left on its own goroutine.
	deadlinePoll(t, func() bool { return rec.n.Load() == 1 })
	if waiting.wakes.Load() != 1 {
		t.Errorf("the waiting path's own goroutine woke %d times, want 1 (handed over at close)", waiting.wakes.Load())
	}
	waiting.close()
	// After the workers closed, a path runs on its own goroutine.
	rec2 := &recorder{}
	_, late := pooledTrack(f, w, 3, rec2)
	f.ingest(f.base, &p, audioPacket(1))
	deadlinePoll(t, func() bool { return rec2.n.Load() >= 1 })
	late.close()
}
