package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
)

// Frames of the sizes both commands send, packetized by Pion's own VP8
// payloader as the SDK does, make exactly vp8Packets packets, and every
// packet but a short last one carries the frame's stamp where the
// receivers look for it: the published counts are exact.
func TestLoadgenStampsEveryFragment(t *testing.T) {
	// The bench's 33-fragment frames; the load test's layers at 600 kbps
	// and 30 fps; odd sizes around a fragment's edge.
	for _, size := range []int{33 * vp8Fragment, 416, 833, 2500, 10000, vp8Fragment, vp8Fragment + 1, stampAt + stampLen} {
		frame := make([]byte, size)
		stampFrame(frame, 12345)
		p := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
		pkts := p.Packetize(frame, 3000)
		if int64(len(pkts)) != vp8Packets(size) {
			t.Errorf("%d bytes: %d packets, vp8Packets says %d", size, len(pkts), vp8Packets(size))
		}
		for i, pkt := range pkts {
			raw, err := pkt.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			frameNs, sent, ok := readStamp(raw, true)
			short := i == len(pkts)-1 && len(pkt.Payload)-4 < stampAt+stampLen
			if ok == short || (ok && (frameNs != 12345 || sent != 12345)) {
				t.Errorf("%d bytes, packet %d of %d (%d bytes of payload): stamp %v %d %d", size, i, len(pkts), len(pkt.Payload), ok, frameNs, sent)
			}
		}
	}
}

// A stream's sequence numbers: a jump counts the numbers it skips, a late
// packet takes its number's loss back, a duplicate counts nothing, and
// the numbers wrap.
func TestSeqTracker(t *testing.T) {
	var s seqTracker
	type want struct {
		ahead, skipped int64
		filled         bool
	}
	steps := []struct {
		seq uint16
		want
	}{
		{65533, want{1, 0, false}},
		{65534, want{1, 0, false}},
		{1, want{3, 2, false}},     // skips 65535 and 0
		{0, want{0, 0, true}},      // late: repaired
		{0, want{0, 0, false}},     // duplicate
		{1, want{0, 0, false}},     // duplicate of the highest
		{65530, want{0, 0, false}}, // before the first packet: nothing to fill
		{65535, want{0, 0, true}},
		{2, want{1, 0, false}},
		{2 + seqHistory + 10, want{seqHistory + 10, seqHistory + 9, false}},
		{2 + seqHistory + 5, want{0, 0, true}},
	}
	for i, st := range steps {
		a, sk, f := s.observe(st.seq)
		if (want{a, sk, f}) != st.want {
			t.Errorf("step %d (seq %d): ahead %d skipped %d filled %v, want %+v", i, st.seq, a, sk, f, st.want)
		}
	}
}

// Percentiles are the upper edges of the buckets that hold them, by
// nearest rank; past the histogram's span, the largest latency seen; a
// difference of snapshots holds only what came between them.
func TestLatencyPercentiles(t *testing.T) {
	h := new(latencyHistogram)
	if p := h.snapshot().percentile(0.5); p != 0 {
		t.Fatalf("empty histogram: p50 %v", p)
	}
	for range 90 {
		h.add(100 * time.Microsecond)
	}
	for range 9 {
		h.add(time.Millisecond)
	}
	h.add(3 * time.Second)
	c := h.snapshot()
	if p50, p95, p99, p100 := c.percentile(0.5), c.percentile(0.95), c.percentile(0.99), c.percentile(1); p50 != 120*time.Microsecond ||
		p95 != 1020*time.Microsecond || p99 != 1020*time.Microsecond || p100 != 3*time.Second {
		t.Errorf("p50 %v p95 %v p99 %v p100 %v, want 120us, 1.02ms, 1.02ms, 3s", p50, p95, p99, p100)
	}
	for range 10 {
		h.add(5 * time.Millisecond)
	}
	d := h.snapshot().since(c)
	if n, p50 := d.count(), d.percentile(0.5); n != 10 || p50 != 5020*time.Microsecond {
		t.Errorf("difference: %d counts, p50 %v; want 10 and 5.02ms", n, p50)
	}
	if p := durationPercentile([]time.Duration{3, 1, 2, 4}, 0.95); p != 4 {
		t.Errorf("durationPercentile: %v", p)
	}
}

// Through a real server: a publisher of the bench's load (a plain VP8
// track and audio) and one of the load test's (VP8 simulcast, its layers'
// keyframes declaring their size, and DTX audio) reach a subscriber that
// counts them with loadgen, and answer its keyframe requests on each
// video track (for simulcast, the layer it receives).
func TestLoadgenThroughServer(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	g := newLoadgen()
	g.openWindow()
	var wg sync.WaitGroup
	pctx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()

	counter := g.newReceiver(4, true) // two videos, two audios
	sdktest.Join(t, ctx, srv, "counter", "lg", counter.options(quiet, 0))
	keys := newKeyframeWatch()
	watcher := g.newReceiver(0, false)
	opts := watcher.options(quiet, 0)
	opts.OnTrack = keys.onTrack
	sdktest.Join(t, ctx, srv, "watcher", "lg", opts)

	benchPub := g.newReceiver(0, false)
	r := sdktest.Join(t, ctx, srv, "bench", "lg", benchPub.options(quiet, 0))
	if err := g.publish(pctx, &wg, r, publishSpec{fps: 30, video: []videoLayer{{frameBytes: 3 * vp8Fragment}}, audioBytes: 100}); err != nil {
		t.Fatal(err)
	}
	loadPub := g.newReceiver(0, false)
	r = sdktest.Join(t, ctx, srv, "load", "lg", loadPub.options(quiet, 0))
	if err := g.publish(pctx, &wg, r, loadSpec(30, 300, 0, 3)); err != nil {
		t.Fatal(err)
	}

	sdktest.WaitFor(t, 20*time.Second, func() string {
		return fmt.Sprintf("the counter has %d stamped packets on its least track", counter.minStamped())
	},
		func() bool { return counter.minStamped() >= 20 })
	sdktest.WaitFor(t, 20*time.Second, func() string { return "the watcher receives " + keys.String() },
		func() bool { return keys.ready(2, 10) })
	for _, tr := range keys.videoTracks() {
		before := keys.keyframes(tr)
		if err := tr.RequestKeyframe(); err != nil {
			t.Fatal(err)
		}
		sdktest.WaitFor(t, 10*time.Second, func() string { return fmt.Sprintf("no keyframe of %s after the request: %s", tr.Info.ID, keys) },
			func() bool { return keys.keyframes(tr) > before })
	}

	c := g.counts()
	if c.published <= 0 || c.delivered <= 0 || c.expected <= 0 || c.bytes <= 0 || c.missing < 0 {
		t.Errorf("counts %+v", c)
	}
	if p50, p99 := c.latency.percentile(0.5), c.latency.percentile(0.99); p50 <= 0 || p99 < p50 || c.readLatency.count() == 0 {
		t.Errorf("latency p50 %v p99 %v, %d to the read loop", p50, p99, c.readLatency.count())
	}
	// The counter and each publisher (the watcher reads its tracks itself).
	sdktest.WaitFor(t, 10*time.Second, func() string { return "bots' first media: fewer than 3" },
		func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.firstMedia) == 3 })
}

// keyframeWatch counts the frames and keyframes of the video tracks a bot
// receives.
type keyframeWatch struct {
	mu     sync.Mutex
	tracks map[*sdk.RemoteTrack]*[2]atomic.Int64 // frames, keyframes
}

func newKeyframeWatch() *keyframeWatch {
	return &keyframeWatch{tracks: map[*sdk.RemoteTrack]*[2]atomic.Int64{}}
}

func (k *keyframeWatch) onTrack(t *sdk.RemoteTrack) {
	if t.Track.Kind() != webrtc.RTPCodecTypeVideo {
		for {
			if _, _, err := t.Track.ReadRTP(); err != nil {
				return
			}
		}
	}
	n := new([2]atomic.Int64)
	k.mu.Lock()
	k.tracks[t] = n
	k.mu.Unlock()
	buf := make([]byte, 1600)
	for {
		size, _, err := t.Track.Read(buf)
		if err != nil {
			return
		}
		p := buf[:size]
		off := rtpPayloadOffset(p)
		if off >= len(p) || p[off]&0x17 != 0x10 { // not a frame's first packet (S set, partition 0)
			continue
		}
		d, ok := vp8DescriptorLen(p[off:])
		if off += d; !ok || off >= len(p) {
			continue
		}
		n[0].Add(1)
		if p[off]&0x01 == 0 { // VP8 frame tag: keyframe
			n[1].Add(1)
		}
	}
}

func (k *keyframeWatch) ready(tracks int, frames int64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.tracks) < tracks {
		return false
	}
	for _, n := range k.tracks {
		if n[0].Load() < frames {
			return false
		}
	}
	return true
}

func (k *keyframeWatch) videoTracks() []*sdk.RemoteTrack {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*sdk.RemoteTrack
	for t := range k.tracks {
		out = append(out, t)
	}
	return out
}

func (k *keyframeWatch) keyframes(t *sdk.RemoteTrack) int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tracks[t][1].Load()
}

func (k *keyframeWatch) String() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := fmt.Sprintf("%d video tracks:", len(k.tracks))
	for t, n := range k.tracks {
		s += fmt.Sprintf(" %s %d frames %d keyframes;", t.Info.ID, n[0].Load(), n[1].Load())
	}
	return s
}
