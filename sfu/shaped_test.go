package sfu_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/internal/metricstest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// The shaped-link tests: a publisher sends three simulcast layers (q about
// 120 kbit/s, h 400, f 1200, with a keyframe every keyEvery frames as an
// encoder would) and Opus; a subscriber receives them through shapedLink, a
// token bucket with a drop-tail queue. They assert on what the subscriber
// receives (which layer each frame came from, by the layer and frame
// number the publisher stamps in it; audio packets) and on the server's
// metrics, never on how long anything took.

// keyEvery is the publisher's keyframe interval, in frames (2 s at 25/s).
const keyEvery = 50

// linkQueue is the shaped link's queue: 1 s at 300 kbit/s, a modest
// router buffer.
const linkQueue = 37_500

// shapedCall is a room with a simulcast publisher and one subscriber behind
// a shaped link.
type shapedCall struct {
	srv   *node.Node
	link  *shapedLink
	pub   *simulcastPublisher
	rcv   *layerReceiver
	sub   *sdk.Room
	audio atomic.Int64 // audio packets the publisher sent

	mu     sync.Mutex
	pauses []protocol.VideoPaused // what the subscriber was told
}

func startShapedCall(t *testing.T, ctx context.Context, room string) *shapedCall {
	t.Helper()
	return startShapedCallTo(t, ctx, room, newLayerReceiver())
}

// startShapedCallTo is startShapedCall with the subscriber's receiver given.
func startShapedCallTo(t *testing.T, ctx context.Context, room string, rcv *layerReceiver) *shapedCall {
	t.Helper()
	decisions := newDecisionLog(t)
	c := &shapedCall{srv: startServerLogging(t, decisions), link: newShapedLink(linkQueue), pub: &simulcastPublisher{keyEvery: keyEvery}, rcv: rcv}
	t.Cleanup(decisions.dumpIfFailed) // before the server closes (cleanups run last first)
	t.Cleanup(c.link.close)           // after the subscriber's Leave (cleanups run last first)
	c.sub = joinRoom(t, ctx, c.srv, "sub", room, sdk.Options{
		OnTrack: c.rcv.onTrack,
		// The link sits in the bot's sockets, beneath ICE, DTLS and SRTP.
		Settings: func(se *webrtc.SettingEngine) { se.SetNet(c.link.net(t)) },
	})
	c.sub.OnVideoPaused(func(track string, paused bool, reason string) {
		c.mu.Lock()
		c.pauses = append(c.pauses, protocol.VideoPaused{TrackID: track, Paused: paused, Reason: reason})
		c.mu.Unlock()
	})
	pr := joinRoom(t, ctx, c.srv, "pub", room, sdk.Options{})
	c.pub.run(ctx, t, pr)
	c.publishAudio(ctx, t, pr)
	return c
}

// publishAudio sends 40-byte Opus frames every 20 ms, counting them.
func (c *shapedCall) publishAudio(ctx context.Context, t *testing.T, r *sdk.Room) {
	t.Helper()
	track, err := r.PublishTrack(sdk.Opus, "microphone")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(wg.Wait)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		frame := make([]byte, 40)
		frame[0] = 0x78
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if track.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond}) != nil {
				return
			}
			c.audio.Add(1)
		}
	}()
}

// pausesSeen returns what the subscriber was told so far.
func (c *shapedCall) pausesSeen() []protocol.VideoPaused {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]protocol.VideoPaused(nil), c.pauses...)
}

// longestGap is the longest run of publisher frames in [from, to) that the
// subscriber received on no layer at all.
func (r *layerReceiver) longestGap(from, to uint32) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	longest, run := 0, 0
	for n := from; n < to; n++ {
		if _, ok := r.frames[n]; ok {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	return longest
}

// layerChanges counts how often the layer changes from one received frame
// to the next in [from, to).
func (r *layerReceiver) layerChanges(from, to uint32) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	changes, last := 0, -1
	for n := from; n < to; n++ {
		l, ok := r.frames[n]
		if !ok {
			continue
		}
		if last >= 0 && int(l) != last {
			changes++
		}
		last = int(l)
	}
	return changes
}

// waitLayerFrom is waitLayer that also returns the window it saw.
func waitLayerFrom(t *testing.T, pub *simulcastPublisher, r *layerReceiver, layer int, what string) uint32 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		from, to := waitFrames(t, pub, 25)
		per, total := r.window(from, to)
		if per[layer] == total && total >= 20 {
			return from
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: frames per layer %v of 25 in the last window, want all on layer %d", what, per, layer)
		}
	}
}

func metricDelta(a, b map[string]float64, k string) float64 { return b[k] - a[k] }

// Item 1 of "Adaptive quality": on a link limited to 300 kbit/s the
// subscriber soon gets only q, its video never stops for more than a
// keyframe interval, probes for h are sent and abandoned; when the limit is
// lifted a probe gets through and it is back on f.
func TestShapedLinkLowLayerAndBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startShapedCall(t, ctx, "shaped")

	waitLayer(t, c.pub, c.rcv, 2, "an unlimited link")
	m0 := metricstest.Scrape(t, c.srv.URL())
	limitAt := c.pub.frame.Load() + 1
	c.link.setRate(300e3)
	lowFrom := waitLayerFrom(t, c.pub, c.rcv, 0, "a 300 kbit/s link")
	// "Within a few seconds", counted in the publisher's frames.
	if took := lowFrom - limitAt; took > 10*25 {
		t.Errorf("the subscriber reached q %d frames after the limit, want within 10 s of media (250)", took)
	}
	// It stays on q while probes for h fail: 8 s of media.
	from, to := waitFrames(t, c.pub, 200)
	per, total := c.rcv.window(from, to)
	if per[0] != total || total < 190 {
		t.Errorf("at 300 kbit/s: frames per layer %v of 200, want all on q and at most 10 missing", per)
	}
	m1 := metricstest.Scrape(t, c.srv.URL())
	failed := metricDelta(m0, m1, `huddle_media_probe_clusters_total{outcome="failed"}`)
	if failed < 1 {
		t.Errorf("at 300 kbit/s %v probe clusters failed, want at least one (the allocator probes for h and abandons it)", failed)
	}
	if p := metricDelta(m0, m1, "huddle_media_video_pauses_total"); p != 0 {
		t.Errorf("%v pauses at 300 kbit/s, where q fits", p)
	}

	c.link.setRate(0)
	highFrom := waitLayerFrom(t, c.pub, c.rcv, 2, "the limit lifted")
	m2 := metricstest.Scrape(t, c.srv.URL())
	if ok := metricDelta(m1, m2, `huddle_media_probe_clusters_total{outcome="succeeded"}`); ok < 1 {
		t.Errorf("%v probe clusters succeeded after the limit was lifted, want at least one", ok)
	}
	if pad := metricDelta(m0, m2, "huddle_media_probe_padding_packets_total"); pad < 1 {
		t.Errorf("%v padding packets sent, want probes", pad)
	}
	if gap := c.rcv.longestGap(limitAt, highFrom+25); gap > keyEvery {
		t.Errorf("the video stopped for %d frames in a row, more than the keyframe interval (%d)", gap, keyEvery)
	}
	t.Logf("300 kbit/s: q after %d frames; f again after %d frames; longest gap %d frames; layer switches %v; probes started %v, failed %v, succeeded %v; padding %v packets; link dropped %d, delivered %d",
		lowFrom-limitAt, highFrom-to, c.rcv.longestGap(limitAt, highFrom+25),
		metricDelta(m0, m2, "huddle_media_layer_switches_total"),
		metricDelta(m0, m2, `huddle_media_probe_clusters_total{outcome="started"}`),
		metricDelta(m0, m2, `huddle_media_probe_clusters_total{outcome="failed"}`),
		metricDelta(m0, m2, `huddle_media_probe_clusters_total{outcome="succeeded"}`),
		metricDelta(m0, m2, "huddle_media_probe_padding_packets_total"),
		c.link.dropped.Load(), c.link.delivered.Load())
}

// Item 2: below the lowest layer the video pauses (the subscriber is told
// why) while audio keeps arriving; it resumes when the limit rises.
func TestShapedLinkBelowLowestPausesVideo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startShapedCall(t, ctx, "starved")

	waitLayer(t, c.pub, c.rcv, 2, "an unlimited link")
	m0 := metricstest.Scrape(t, c.srv.URL())
	c.link.setRate(100e3) // audio (about 45 kbit/s on the wire) fits, q (about 135) does not
	waitUntil(t, "the subscriber told its video is paused", func() bool {
		for _, p := range c.pausesSeen() {
			if p.Paused {
				return true
			}
		}
		return false
	})
	for _, p := range c.pausesSeen() {
		if p.Paused && p.Reason != protocol.PauseBandwidth {
			t.Errorf("paused with reason %q, want %q", p.Reason, protocol.PauseBandwidth)
		}
	}
	// Paused: over 4 s of media, no video arrives and audio does. First
	// what the link had queued drains (at this rate its queue holds 3 s).
	waitFrames(t, c.pub, 100)
	v0, a0, sent0 := c.rcv.video.Load(), c.rcv.audio.Load(), c.audio.Load()
	for i := range 4 { // and audio never stops: half of each second's arrives at least
		a, sent := c.rcv.audio.Load(), c.audio.Load()
		waitFrames(t, c.pub, 25)
		if got, want := c.rcv.audio.Load()-a, (c.audio.Load()-sent)/2; got < want {
			t.Errorf("paused, second %d: %d audio packets arrived, want at least %d", i, got, want)
		}
	}
	v1, a1, sent1 := c.rcv.video.Load(), c.rcv.audio.Load(), c.audio.Load()
	if got, sent := a1-a0, sent1-sent0; got < sent*8/10 {
		t.Errorf("while video was paused, %d audio packets of %d arrived, want at least 80%%", got, sent)
	}
	// Padding probes for a resume may arrive on the video's SSRC; frames not.
	from, to := waitFrames(t, c.pub, 1)
	if _, total := c.rcv.window(from-100, to); total > 0 {
		t.Errorf("%d video frames arrived while paused", total)
	}
	m1 := metricstest.Scrape(t, c.srv.URL())
	if p := metricDelta(m0, m1, "huddle_media_video_pauses_total"); p < 1 {
		t.Errorf("%v pauses counted, want at least one", p)
	}

	c.link.setRate(400e3) // q fits again (h does not)
	waitUntil(t, "the subscriber told its video resumed", func() bool {
		ps := c.pausesSeen()
		return len(ps) > 0 && !ps[len(ps)-1].Paused
	})
	back := waitLayerFrom(t, c.pub, c.rcv, 0, "the limit raised to 400 kbit/s")
	m2 := metricstest.Scrape(t, c.srv.URL())
	if ok := metricDelta(m1, m2, `huddle_media_probe_clusters_total{outcome="succeeded"}`); ok < 1 {
		t.Errorf("%v probe clusters succeeded before the resume, want at least one", ok)
	}
	t.Logf("paused: %d video packets (padding) and %d of %d audio packets arrived over 100 frames; resumed on q at frame %d; told %v; resent %v packets, %v after the pause; probes started %v, failed %v, succeeded %v; link dropped %d",
		v1-v0, a1-a0, sent1-sent0, back, c.pausesSeen(),
		metricDelta(m0, m2, "huddle_media_retransmissions_total"), metricDelta(m1, m2, "huddle_media_retransmissions_total"),
		metricDelta(m0, m2, `huddle_media_probe_clusters_total{outcome="started"}`),
		metricDelta(m0, m2, `huddle_media_probe_clusters_total{outcome="failed"}`),
		metricDelta(m0, m2, `huddle_media_probe_clusters_total{outcome="succeeded"}`),
		c.link.dropped.Load())
}

// Item 1, second half: a limit that steps down and up (800, 250, 800, 250
// kbit/s, then none, 6 s of media each) moves the subscriber between layers
// a bounded number of times, never flapping, and it ends on f.
func TestShapedLinkStepsStayStable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startShapedCall(t, ctx, "steps")

	waitLayer(t, c.pub, c.rcv, 2, "an unlimited link")
	m0 := metricstest.Scrape(t, c.srv.URL())
	first := c.pub.frame.Load() + 1
	steps := []float64{800e3, 250e3, 800e3, 250e3}
	for _, bps := range steps {
		c.link.setRate(bps)
		from, to := waitFrames(t, c.pub, 150)
		per, total := c.rcv.window(to-50, to)
		t.Logf("%4.0f kbit/s: frames per layer in its last 2 s %v of 50 (%d); layer changes %d", bps/1e3, per, total, c.rcv.layerChanges(from, to))
		if bps < 400e3 && per[2] > 0 {
			t.Errorf("at %.0f kbit/s %d frames of f arrived in the step's last 2 s", bps/1e3, per[2])
		}
	}
	c.link.setRate(0)
	high := waitLayerFrom(t, c.pub, c.rcv, 2, "the limit lifted after the steps")
	m1 := metricstest.Scrape(t, c.srv.URL())
	changes := c.rcv.layerChanges(first, high+25)
	switches := metricDelta(m0, m1, "huddle_media_layer_switches_total")
	// Each of the five changes of limit needs one or two moves (f to h,
	// h to q, q to h, h to q, q to h to f: six); twelve is twice that.
	if changes > 12 || switches > 12 {
		t.Errorf("%d layer changes received, %v switches counted over 5 changes of limit, want at most 12", changes, switches)
	}
	// q always fits, so any pause is a defect: after a drop from 800 to
	// 250 kbit/s the drop-tail queue overflows and its losses are reported
	// for seconds after the move down; they must not pause the video.
	if p := metricDelta(m0, m1, "huddle_media_video_pauses_total"); p > 0 {
		t.Errorf("%v pauses, where q always fits", p)
	}
	t.Logf("steps: %d layer changes received, %v switches; probes started %v, failed %v, succeeded %v; padding %v packets; link dropped %d",
		changes, switches,
		metricDelta(m0, m1, `huddle_media_probe_clusters_total{outcome="started"}`),
		metricDelta(m0, m1, `huddle_media_probe_clusters_total{outcome="failed"}`),
		metricDelta(m0, m1, `huddle_media_probe_clusters_total{outcome="succeeded"}`),
		metricDelta(m0, m1, "huddle_media_probe_padding_packets_total"),
		c.link.dropped.Load())
}

// Item 1 with a busy bot (issue 8, "bot CPU looks like congestion"): a
// subscriber on an unlimited link whose application stops reading for
// 300 ms every second keeps f. Its SDK stamps arrivals when SRTP hands a
// packet over (sdk/arrival.go), so the stalls are not a queue on the link;
// stamped when the application read them, they looked like one and the
// allocator moved the video down.
func TestShapedLinkBusyReaderKeepsHighLayer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rcv := newLayerReceiver()
	var mu sync.Mutex
	var last time.Time
	var stalls atomic.Int64
	rcv.stall = func() { // the audio and the video reader share the stalls
		mu.Lock()
		defer mu.Unlock()
		if last.IsZero() {
			last = time.Now()
		}
		if time.Since(last) >= time.Second {
			time.Sleep(300 * time.Millisecond)
			last = time.Now()
			stalls.Add(1)
		}
	}
	c := startShapedCallTo(t, ctx, "busy", rcv)
	waitLayer(t, c.pub, c.rcv, 2, "an unlimited link, a busy reader")
	m0 := metricstest.Scrape(t, c.srv.URL())
	s0 := stalls.Load()
	from, to := waitFrames(t, c.pub, 250) // 10 s of media
	per, total := c.rcv.window(from, to)
	m1 := metricstest.Scrape(t, c.srv.URL())
	if per[2] != total || total < 240 {
		t.Errorf("a busy reader on an unlimited link: frames per layer %v of 250, want all on f and at most 10 missing", per)
	}
	if sw := metricDelta(m0, m1, "huddle_media_layer_switches_total"); sw != 0 {
		t.Errorf("%v layer switches for a busy reader on an unlimited link, want none", sw)
	}
	if n := stalls.Load() - s0; n < 5 {
		t.Fatalf("the reader stalled %d times in 10 s of media, want about 10: the case did not happen", n)
	}
	t.Logf("busy reader: %d stalls of 300 ms; frames per layer %v of 250; layer switches %v; pauses %v",
		stalls.Load()-s0, per, metricDelta(m0, m1, "huddle_media_layer_switches_total"), metricDelta(m0, m1, "huddle_media_video_pauses_total"))
}
