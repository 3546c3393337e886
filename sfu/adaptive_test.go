package sfu_test

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/internal/metricstest"
	"github.com/huddle-rtc/huddle/sdk"
)

// simulcastPublisher sends three layers of a synthetic VP8 stream at 25
// frames/s: q about 120 kbit/s, h 400, f 1200. Each frame names its layer
// and number; keyframes carry the layer's size. With keyEvery set, every
// layer also sends a keyframe every keyEvery frames, as encoders do.
type simulcastPublisher struct {
	keyEvery  int
	frame     atomic.Uint32
	keyframes atomic.Int64
}

var layerFrameSize = [3]int{600, 2000, 6000}

func (p *simulcastPublisher) run(ctx context.Context, t *testing.T, r *sdk.Room) *sdk.SimulcastTrack {
	t.Helper()
	track, err := r.PublishSimulcast(sdk.VP8, "camera")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		key := [3]bool{true, true, true}
		for n := uint32(0); ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if p.keyEvery > 0 && n%uint32(p.keyEvery) == 0 {
				key = [3]bool{true, true, true}
			}
			for l := range 3 {
				select {
				case <-track.KeyframeRequests(l):
					p.keyframes.Add(1)
					key[l] = true
				default:
				}
				f := make([]byte, layerFrameSize[l])
				f[0] = 0x11
				if key[l] {
					f[0] = 0x10
					copy(f[3:], []byte{0x9d, 0x01, 0x2a})
					binary.LittleEndian.PutUint16(f[6:], uint16(320<<l))
					binary.LittleEndian.PutUint16(f[8:], uint16(180<<l))
				}
				f[10] = byte(l)
				binary.BigEndian.PutUint32(f[11:], n)
				if !track.LayerActive(l) {
					key[l] = true // a resumed layer starts with a keyframe
					continue
				}
				if track.WriteSample(l, media.Sample{Data: f, Duration: 40 * time.Millisecond}) != nil {
					return
				}
				key[l] = false
			}
			p.frame.Store(n)
		}
	}()
	return track
}

// layerReceiver records which layer each received frame came from, by
// publisher frame number.
type layerReceiver struct {
	mu     sync.Mutex
	frames map[uint32]byte // frame -> layer
	audio  atomic.Int64
	video  atomic.Int64
	// stall, when set, is called after every packet read: a bot busy
	// elsewhere (shaped_test.go).
	stall func()
}

func newLayerReceiver() *layerReceiver { return &layerReceiver{frames: map[uint32]byte{}} }

func (r *layerReceiver) onTrack(rt *sdk.RemoteTrack) {
	buf := make([]byte, 1600)
	for {
		n, _, err := rt.Track.Read(buf)
		if err != nil {
			return
		}
		if r.stall != nil {
			r.stall()
		}
		if rt.Info.Kind != "video" {
			r.audio.Add(1)
			continue
		}
		r.video.Add(1)
		var pkt rtp.Packet
		var vp8 codecs.VP8Packet
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		payload, err := vp8.Unmarshal(pkt.Payload)
		if err != nil || vp8.S != 1 || len(payload) < 15 {
			continue
		}
		r.mu.Lock()
		r.frames[binary.BigEndian.Uint32(payload[11:])] = payload[10]
		r.mu.Unlock()
	}
}

// window counts the frames in [from, to) received, per layer.
func (r *layerReceiver) window(from, to uint32) (perLayer [3]int, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n := from; n < to; n++ {
		if l, ok := r.frames[n]; ok && l < 3 {
			perLayer[l]++
			total++
		}
	}
	return perLayer, total
}

// waitFrames waits until the publisher has sent n more frames and returns
// the window [from, from+n).
func waitFrames(t *testing.T, pub *simulcastPublisher, n uint32) (uint32, uint32) {
	t.Helper()
	from := pub.frame.Load() + 1
	waitUntil(t, "publisher frames", func() bool { return pub.frame.Load() >= from+n+5 })
	return from, from + n
}

// waitLayer waits until a whole window of frames arrived on one layer.
func waitLayer(t *testing.T, pub *simulcastPublisher, r *layerReceiver, layer int, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		from, to := waitFrames(t, pub, 25)
		per, total := r.window(from, to)
		if per[layer] == total && total >= 20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: frames per layer %v of 25 in the last window, want all on layer %d", what, per, layer)
		}
	}
}

// A subscriber that reports a small tile gets the low layer with plenty
// of bandwidth; nobody then wants h and f, so the publisher is told to stop
// them and their packets stop arriving at the server; an enlarged tile
// brings the high layer, and its packets, back.
func TestRenderSizeAndDynacast(t *testing.T) {
	decisions := newDecisionLog(t)
	srv := startServerLogging(t, decisions)
	t.Cleanup(decisions.dumpIfFailed) // before the server closes (cleanups run last first)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rcv := newLayerReceiver()
	var trackID atomic.Value
	sub := joinRoom(t, ctx, srv, "sub", "dynacast", sdk.Options{OnTrack: func(rt *sdk.RemoteTrack) {
		trackID.Store(rt.Info.ID)
		rcv.onTrack(rt)
	}})
	pub := &simulcastPublisher{}
	track := pub.run(ctx, t, joinRoom(t, ctx, srv, "pub", "dynacast", sdk.Options{}))
	var told atomic.Int64
	track.OnLayerChange(func(int, bool) { told.Add(1) })

	waitLayer(t, pub, rcv, 2, "no render size")
	if err := sub.SetRenderSize(trackID.Load().(string), 160, 90, false); err != nil {
		t.Fatal(err)
	}
	waitLayer(t, pub, rcv, 0, "a 160x90 tile")
	waitUntil(t, "the publisher told to stop h and f", func() bool { return !track.LayerActive(1) && !track.LayerActive(2) })
	if !track.LayerActive(0) {
		t.Fatal("the layer in use was paused")
	}
	// The server receives no more of h and f, and still q.
	m0 := metricstest.Scrape(t, srv.URL())
	waitFrames(t, pub, 25)
	m1 := metricstest.Scrape(t, srv.URL())
	for _, l := range []string{"h", "f"} {
		k := `huddle_media_layer_packets_received_total{layer="` + l + `"}`
		if m1[k] != m0[k] {
			t.Errorf("layer %s: %v packets arrived after the publisher was told to stop it", l, m1[k]-m0[k])
		}
	}
	if k := `huddle_media_layer_packets_received_total{layer="q"}`; m1[k] <= m0[k] {
		t.Errorf("layer q stopped arriving")
	}
	// The subscriber sends transport-wide feedback: its estimate is known
	// and exported.
	if n, sum := m1["huddle_media_subscriber_estimate_bps_count"], m1["huddle_media_subscriber_estimate_bps_sum"]; n < 1 || sum <= 0 {
		t.Errorf("subscriber estimates exported: count %v sum %v, want at least one known estimate", n, sum)
	}

	if err := sub.SetRenderSize(trackID.Load().(string), 1280, 720, false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the publisher told to resume f", func() bool { return track.LayerActive(2) })
	waitLayer(t, pub, rcv, 2, "a 1280x720 tile")
	t.Logf("the publisher was told %d layer changes; %d keyframe requests", told.Load(), pub.keyframes.Load())
}
