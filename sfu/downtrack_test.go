package sfu

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// recorder is a TrackLocalWriter that keeps what it was given.
type recorder struct {
	mu       sync.Mutex
	pkts     []rtp.Header
	payloads [][]byte
	n        atomic.Int64
}

func (r *recorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	r.mu.Lock()
	r.pkts = append(r.pkts, h.Clone()) // the writer may reuse what h points to
	r.payloads = append(r.payloads, append([]byte(nil), payload...))
	r.mu.Unlock()
	r.n.Add(1)
	return 0, nil
}

func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }

func testForwarder(kind webrtc.RTPCodecType, plis *atomic.Int64) *Forwarder {
	f := &Forwarder{
		info:  TrackInfo{ID: "TR_t", Kind: kind.String(), Codec: webrtc.MimeTypeVP8},
		codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		kind:  kind,
		writePLI: func(uint32) error {
			plis.Add(1)
			return nil
		},
		log:  slog.Default(),
		done: make(chan struct{}),
	}
	f.downs.Store(&[]*DownTrack{})
	f.base = newSimLayer(0, "", nil, 1234, kind)
	f.attach(f.base)
	return f
}

// testDownTrack returns a bound, connected downtrack whose send is driven
// by the test directly (its send path has no goroutine).
func testDownTrack(t *testing.T, f *Forwarder) (*DownTrack, *recorder) {
	ready := &atomic.Bool{}
	ready.Store(true)
	d := newDownTrack(f, newSendPath(slog.Default()), ready)
	rec := &recorder{}
	d.writer, d.ssrc, d.pt = rec, 99, 100
	return d, rec
}

func vp8(seq uint16, ts uint32, key bool) *packet {
	payload := []byte{0x10, 0x11, 0, 0}
	if key {
		payload[1] = 0x10
	}
	return &packet{header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, SSRC: 5}, payload: payload, keyframe: key}
}

func TestDownTrackStartsAtKeyframeAndRewrites(t *testing.T) {
	var plis atomic.Int64
	d, rec := testDownTrack(t, testForwarder(webrtc.RTPCodecTypeVideo, &plis))
	d.send(vp8(100, 9000, false), 0) // delta before any keyframe: dropped
	d.send(vp8(101, 9000, false), 0)
	if rec.n.Load() != 0 {
		t.Fatal("delta frames were forwarded before a keyframe")
	}
	d.send(vp8(102, 12000, true), 0)
	d.send(vp8(104, 15000, false), 0) // 103 lost upstream: the gap must stay visible
	d.send(vp8(103, 12000, false), 0) // ... and the late packet fills it
	d.send(vp8(105, 18000, false), 0)
	if len(rec.pkts) != 4 {
		t.Fatalf("wrote %d packets, want 4", len(rec.pkts))
	}
	base, tsBase := rec.pkts[0].SequenceNumber, rec.pkts[0].Timestamp
	wantSeq := []uint16{base, base + 2, base + 1, base + 3}
	wantTS := []uint32{tsBase, tsBase + 3000, tsBase, tsBase + 6000}
	for i, h := range rec.pkts {
		if h.SequenceNumber != wantSeq[i] || h.Timestamp != wantTS[i] {
			t.Errorf("packet %d: seq %d ts %d, want seq %d ts %d", i, h.SequenceNumber, h.Timestamp, wantSeq[i], wantTS[i])
		}
		if h.SSRC != 99 || h.PayloadType != 100 || h.Extension || h.Padding {
			t.Errorf("packet %d header not rewritten: %+v", i, h)
		}
	}
}

func TestDownTrackSkipsPaddingWithoutHoles(t *testing.T) {
	var plis atomic.Int64
	d, rec := testDownTrack(t, testForwarder(webrtc.RTPCodecTypeVideo, &plis))
	d.send(vp8(10, 0, true), 0)
	pad := &packet{header: rtp.Header{SequenceNumber: 11, Timestamp: 0}}
	d.send(pad, 0)
	d.send(&packet{header: rtp.Header{SequenceNumber: 12, Timestamp: 0}}, 0)
	d.send(vp8(13, 3000, false), 0)
	if len(rec.pkts) != 2 {
		t.Fatalf("wrote %d packets, want 2 (padding skipped)", len(rec.pkts))
	}
	if got := rec.pkts[1].SequenceNumber - rec.pkts[0].SequenceNumber; got != 1 {
		t.Errorf("padding left a hole of %d in the sequence numbers", got-1)
	}
}

func TestDownTrackOverflowRestartsAtKeyframe(t *testing.T) {
	var plis atomic.Int64
	d, rec := testDownTrack(t, testForwarder(webrtc.RTPCodecTypeVideo, &plis))
	d.send(vp8(1, 0, true), 0)
	d.send(vp8(2, 3000, false), 0)
	// The queue overflowed: packets 3..9 never reached this subscriber.
	d.dropped.Store(true)
	d.send(vp8(10, 27000, false), 0) // delta after a local loss: dropped
	if plis.Load() != 0 {
		t.Error("a keyframe was requested at once after local loss; it should wait for one someone else asked for")
	}
	d.waitSince = d.waitSince.Add(-recoveryWait) // none came
	d.send(vp8(10, 27000, false), 0)
	if plis.Load() == 0 {
		t.Error("no keyframe requested after waiting recoveryWait for one")
	}
	d.send(vp8(11, 30000, true), 0)
	d.send(vp8(12, 33000, false), 0)
	if len(rec.pkts) != 4 {
		t.Fatalf("wrote %d packets, want 4", len(rec.pkts))
	}
	for i := 1; i < 4; i++ {
		if rec.pkts[i].SequenceNumber != rec.pkts[i-1].SequenceNumber+1 {
			t.Errorf("sequence hole after local loss: %d then %d", rec.pkts[i-1].SequenceNumber, rec.pkts[i].SequenceNumber)
		}
	}
	if rec.pkts[2].Timestamp-rec.pkts[0].Timestamp != 30000 {
		t.Errorf("timestamps lost their spacing across the restart")
	}
}

func TestDownTrackWaitsForTransport(t *testing.T) {
	var plis atomic.Int64
	d, rec := testDownTrack(t, testForwarder(webrtc.RTPCodecTypeVideo, &plis))
	d.ready.Store(false)
	d.send(vp8(1, 0, true), 0)
	if rec.n.Load() != 0 {
		t.Fatal("wrote before the transport was connected")
	}
	d.ready.Store(true)
	d.send(vp8(2, 3000, false), 0)
	if rec.n.Load() != 0 {
		t.Fatal("started on a delta frame")
	}
	d.send(vp8(3, 6000, true), 0)
	if rec.n.Load() != 1 {
		t.Fatal("keyframe after connect not written")
	}
}

func TestAudioNeedsNoKeyframe(t *testing.T) {
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeAudio, &plis)
	d, rec := testDownTrack(t, f)
	d.send(&packet{header: rtp.Header{SequenceNumber: 7, Timestamp: 960}, payload: []byte{1}}, 0)
	if rec.n.Load() != 1 {
		t.Fatal("audio was held back")
	}
	f.RequestKeyframe()
	if plis.Load() != 0 {
		t.Error("keyframe requested for audio")
	}
}

func TestKeyframeRequestsAreThrottledNotLost(t *testing.T) {
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	for range 10 {
		f.RequestKeyframe()
	}
	if plis.Load() != 1 {
		t.Fatalf("%d PLIs sent at once, want 1", plis.Load())
	}
	// The suppressed ones are folded into one PLI at the end of the window.
	deadlinePoll(t, func() bool { return plis.Load() == 2 })
}

func TestParsePacketRefusesMalformed(t *testing.T) {
	good := []byte{0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5, 0x10, 0x00, 0x9d}
	var p packet
	if err := parseInto(&p, good, webrtc.MimeTypeVP8, true); err != nil || !p.keyframe || len(p.payload) != 3 {
		t.Fatalf("good packet: %+v, %v", p, err)
	}
	for name, raw := range map[string][]byte{
		"empty":             {},
		"short header":      {0x80, 96, 0},
		"bad version":       {0x00, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5},
		"padding too long":  {0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5, 1, 200},
		"zero padding":      {0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5, 1, 0},
		"csrc past the end": {0x8f, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5},
	} {
		if err := parseInto(&p, raw, webrtc.MimeTypeVP8, true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// blockingWriter never returns from a write until released, like a
// subscriber whose TCP connection has stopped draining.
type blockingWriter struct{ release chan struct{} }

func (b blockingWriter) WriteRTP(*rtp.Header, []byte) (int, error) { <-b.release; return 0, nil }
func (b blockingWriter) Write(p []byte) (int, error)               { <-b.release; return len(p), nil }

// A subscriber whose writes hang never delays the others: the forwarder's
// fan-out only queues, and each subscriber's send path writes from its own
// goroutine.
func TestSlowSubscriberDoesNotDelayOthers(t *testing.T) {
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeAudio, &plis)
	ready := &atomic.Bool{}
	ready.Store(true)

	stuckPath := newSendPath(slog.Default())
	go stuckPath.run()
	stuck := newDownTrack(f, stuckPath, ready)
	release := make(chan struct{})
	stuck.writer, stuck.ssrc, stuck.pt = blockingWriter{release}, 1, 111
	f.addDownTrack(stuck)
	defer stuckPath.close()
	defer close(release)

	finePath := newSendPath(slog.Default())
	go finePath.run()
	defer finePath.close()
	fine := newDownTrack(f, finePath, ready)
	rec := &recorder{}
	fine.writer, fine.ssrc, fine.pt = rec, 2, 111
	f.addDownTrack(fine)

	const n = 2*audioQueueLen + 64 // far more than the stuck queue holds
	var p packet
	for i := range n {
		raw := []byte{0x80, 111, byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, 0, 5, 1}
		f.ingest(f.base, &p, raw) // must never block, or this loop would hang
		// Pace the producer on the healthy subscriber only, so its queue
		// never overflows while the stuck one's does.
		deadlinePoll(t, func() bool { return rec.n.Load() == int64(i+1) })
	}
	if stuckPath.dropped.Load() == 0 {
		t.Error("the stuck subscriber's queue never overflowed")
	}
	if got := rec.n.Load(); got != n {
		t.Fatalf("healthy subscriber got %d of %d packets", got, n)
	}
}

// A keyframe repaired by NACK arrives after the delta frames that follow
// it, which were discarded while waiting: starting on it would leave a hole
// in the subscriber's sequence numbers that nobody can fill. The downtrack
// waits for a newer keyframe instead, and asks for one.
func TestDownTrackIgnoresKeyframeOlderThanDiscardedPackets(t *testing.T) {
	var plis atomic.Int64
	d, rec := testDownTrack(t, testForwarder(webrtc.RTPCodecTypeVideo, &plis))
	d.send(vp8(11, 3000, false), 0) // keyframe 10 was lost upstream...
	d.send(vp8(12, 6000, false), 0)
	d.send(vp8(10, 0, true), 0) // ...and repaired late
	if rec.n.Load() != 0 {
		t.Fatal("started on a keyframe older than packets already discarded")
	}
	if plis.Load() == 0 {
		t.Error("no new keyframe requested")
	}
	d.send(vp8(13, 9000, true), 0)
	d.send(vp8(14, 12000, false), 0)
	if len(rec.pkts) != 2 || rec.pkts[1].SequenceNumber != rec.pkts[0].SequenceNumber+1 {
		t.Fatalf("want the run to start at the newer keyframe with no hole, got %+v", rec.pkts)
	}
}

// A run longer than half the sequence space keeps flowing: sequence numbers
// wrap and the run's start must never look newer than the packets.
func TestDownTrackLongRunSurvivesWrap(t *testing.T) {
	var plis atomic.Int64
	d, rec := testDownTrack(t, testForwarder(webrtc.RTPCodecTypeVideo, &plis))
	const n = 70000
	for i := range n {
		d.send(vp8(uint16(60000+i), uint32(i)*3000, i == 0), 0)
	}
	if got := rec.n.Load(); got != n {
		t.Fatalf("wrote %d of %d packets of one long run", got, n)
	}
}

// Packets from before a run that restarted at a keyframe after a resume or
// a local loss are not resent: the subscriber's decoder has moved
// past them, and resending them in a burst into a link that only just got
// room is what made a resumed video pause again. Packets before a probe's
// padding are still resent.
func TestNoResendFromBeforeAKeyframeRestart(t *testing.T) {
	var plis atomic.Int64
	d, rec := testDownTrack(t, testForwarder(webrtc.RTPCodecTypeVideo, &plis))
	d.ext.twcc = 3 // padding needs transport-wide numbers
	d.path.probe = newProber(d.path)
	d.send(vp8(1, 0, true), 0)
	end := vp8(2, 3000, false)
	end.header.Marker = true // the frame is whole: padding may follow
	d.send(end, 0)
	if !d.sendPadding() {
		t.Fatal("no padding after a whole frame")
	}
	d.send(vp8(3, 6000, false), 0)
	now := time.Now()
	first := rec.pkts[0].SequenceNumber
	if _, ok := d.resendable(first, now); !ok {
		t.Fatal("a packet from before a probe's padding was not resent")
	}
	d.dropped.Store(true) // the queue overflowed: a new run at a keyframe
	d.send(vp8(10, 27000, true), 0)
	d.send(vp8(11, 30000, false), 0)
	n := len(rec.pkts)
	if _, ok := d.resendable(rec.pkts[1].SequenceNumber, now); ok {
		t.Error("a packet from before the keyframe restart was resent")
	}
	if _, ok := d.resendable(rec.pkts[n-2].SequenceNumber, now); !ok {
		t.Error("the restart's keyframe was not resent")
	}
	if _, ok := d.resendable(rec.pkts[n-1].SequenceNumber, now); !ok {
		t.Error("a packet after the restart was not resent")
	}
}
