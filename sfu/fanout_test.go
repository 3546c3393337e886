package sfu_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media"
	"golang.org/x/sys/unix"

	"github.com/huddle-rtc/huddle/internal/metricstest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// These tests drive a whole server on loopback with SDK bots: the fan-out
// is only what it is with real PeerConnections, SRTP and RTCP.

func startServer(t *testing.T) *node.Node { t.Helper(); return sdktest.Start(t) }

// startServerLogging is startServer with the server's log going to h.
func startServerLogging(t *testing.T, h slog.Handler) *node.Node {
	t.Helper()
	return sdktest.StartWith(t, func(c *node.Config) { c.Logger = slog.New(h) })
}

func joinRoom(t *testing.T, ctx context.Context, srv *node.Node, identity, room string, opts sdk.Options) *sdk.Room {
	t.Helper()
	key, secret, ok := srv.DevKey()
	if !ok {
		t.Fatal("server is not in dev mode")
	}
	tok, err := auth.Mint(key, secret, auth.Claims{Identity: identity, Name: identity, Room: room, Grants: protocol.AllGrants()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	r, err := sdk.Join(ctx, srv.URL(), tok, opts)
	if err != nil {
		t.Fatalf("%s joins: %v", identity, err)
	}
	t.Cleanup(func() { r.Leave() })
	return r
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sfuGoroutines counts the goroutines the sfu package started.
func sfuGoroutines() int {
	buf := make([]byte, 1<<22)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "created by github.com/huddle-rtc/huddle/sfu.")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// publisher sends numbered one-packet VP8 frames every 20 ms (and Opus on
// audio tracks) until ctx ends, answering keyframe requests, which it counts.
type publisher struct {
	frame     atomic.Uint32 // frames sent on the first video track
	keyframes atomic.Int64  // keyframe requests received, all tracks
}

func (p *publisher) publish(ctx context.Context, t *testing.T, r *sdk.Room, videos, audios int) {
	t.Helper()
	for v := range videos {
		track, err := r.PublishTrack(sdk.VP8, "camera")
		if err != nil {
			t.Fatal(err)
		}
		go p.loop(ctx, track, v == 0, func(n uint32, key bool) []byte {
			f := make([]byte, 900)
			f[0] = 0x11
			if key {
				f[0] = 0x10
				copy(f[3:], []byte{0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00})
			}
			binary.BigEndian.PutUint32(f[10:], n)
			return f
		})
	}
	for range audios {
		track, err := r.PublishTrack(sdk.Opus, "microphone")
		if err != nil {
			t.Fatal(err)
		}
		go p.loop(ctx, track, false, func(n uint32, _ bool) []byte {
			f := make([]byte, 40)
			f[0] = 0x78
			binary.BigEndian.PutUint32(f[10:], n)
			return f
		})
	}
}

func (p *publisher) loop(ctx context.Context, track *sdk.LocalTrack, counted bool, frame func(uint32, bool) []byte) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	key := true
	for n := uint32(0); ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-track.KeyframeRequests():
			p.keyframes.Add(1)
			key = true
		case <-tick.C:
		}
		if track.WriteSample(media.Sample{Data: frame(n, key), Duration: 20 * time.Millisecond}) != nil {
			return
		}
		key = false
		if counted {
			p.frame.Store(n)
		}
	}
}

// receiver counts what one bot gets: packets per track, and the frame
// counters of video (one packet per frame, counter after the VP8
// descriptor byte).
type receiver struct {
	mu      sync.Mutex
	packets map[string]int
	frames  map[uint32]bool
}

func newReceiver() *receiver {
	return &receiver{packets: map[string]int{}, frames: map[uint32]bool{}}
}

func (r *receiver) onTrack(rt *sdk.RemoteTrack) {
	buf := make([]byte, 1600)
	video := rt.Info.Kind == "video"
	for {
		n, _, err := rt.Track.Read(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.packets[rt.Info.ID]++
		if video {
			if f, ok := frameCounter(buf[:n]); ok {
				r.frames[f] = true
			}
		}
		r.mu.Unlock()
	}
}

// frameCounter finds the counter in a one-packet VP8 frame: past the RTP
// header (and any extensions the SFU wrote), the VP8 payload descriptor and
// ten bytes of frame.
func frameCounter(b []byte) (uint32, bool) {
	var p codecs.VP8Packet
	var h rtp.Header
	hl, err := h.Unmarshal(b)
	if err != nil {
		return 0, false
	}
	f, err := p.Unmarshal(b[hl:])
	if err != nil || len(f) < 14 {
		return 0, false
	}
	return binary.BigEndian.Uint32(f[10:]), true
}

func (r *receiver) tracksWithPackets(min int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for _, n := range r.packets {
		if n >= min {
			k++
		}
	}
	return k
}

// missing lists the frames in [from, to) this receiver has not got.
func (r *receiver) missing(from, to uint32) []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint32
	for n := from; n < to; n++ {
		if !r.frames[n] {
			out = append(out, n)
		}
	}
	return out
}

// N subscribers of M tracks cost one goroutine per peer (its send path) and
// two per published track (reading its RTP and RTCP), not one or two per
// subscriber and track; and all of them end when everyone has left.
func TestFanOutGoroutinesScaleWithPeersNotTracks(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := sfuGoroutines()
	const subscribers, videos, audios = 5, 3, 1
	const tracks = videos + audios
	var recv []*receiver
	var rooms []*sdk.Room
	for i := range subscribers {
		r := newReceiver()
		recv = append(recv, r)
		rooms = append(rooms, joinRoom(t, ctx, srv, fmt.Sprintf("sub%d", i), "fanout", sdk.Options{OnTrack: r.onTrack}))
	}
	pub := &publisher{}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	rooms = append(rooms, joinRoom(t, ctx, srv, "pub", "fanout", sdk.Options{}))
	pub.publish(pctx, t, rooms[len(rooms)-1], videos, audios)
	for i, r := range recv {
		waitUntil(t, fmt.Sprintf("subscriber %d to get all %d tracks", i, tracks), func() bool { return r.tracksWithPackets(20) == tracks })
	}
	got := sfuGoroutines() - base
	peers := subscribers + 1
	// Per room, the speaker loop, the quality monitor and the allocator
	// (speaker.go, quality.go, allocator.go) are three more, whatever the
	// number of peers.
	const roomGoroutines = 3
	if limit := peers + 2*tracks + roomGoroutines; got > limit {
		t.Errorf("%d sfu goroutines for %d peers and %d tracks (%d downtracks); want at most %d", got, peers, tracks, subscribers*tracks, limit)
	}
	t.Logf("%d sfu goroutines for %d peers, %d tracks, %d downtracks", got, peers, tracks, subscribers*tracks)

	// A packet is counted just after it is written, so a subscriber may
	// read it before the count: wait for the count to catch up.
	var m map[string]float64
	waitUntil(t, fmt.Sprintf("the metrics to count the %d packets the subscribers got", subscribers*tracks*20), func() bool {
		m = metricstest.Scrape(t, srv.URL())
		return m["huddle_media_packets_sent_total"] >= float64(subscribers*tracks*20)
	})
	if kernelHasGSO(t) && !(m["huddle_media_gso_packets_total"] > m["huddle_media_gso_sends_total"] && m["huddle_media_gso_sends_total"] > 0) {
		t.Errorf("GSO sends %v carrying %v packets: bursts were not gathered", m["huddle_media_gso_sends_total"], m["huddle_media_gso_packets_total"])
	}
	t.Logf("metrics: %v", m)
	stop()
	for _, r := range rooms {
		r.Leave()
	}
	waitUntil(t, "sfu goroutines back to the baseline", func() bool { return sfuGoroutines() == base })
}

// throttle is a subscriber's downlink of limited rate: a token bucket in
// front of its receive path drops video packets beyond about 20 per second
// (the publisher sends 50). NACKs and their retransmissions cross it too.
type throttle struct {
	interceptor.NoOp
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped atomic.Int64
}

func (th *throttle) NewInterceptor(string) (interceptor.Interceptor, error) { return th, nil }

func (th *throttle) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	if !strings.EqualFold(info.MimeType, "video/VP8") {
		return r
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, a2, err := r.Read(b, a)
			if err != nil || th.pass() {
				return n, a2, err
			}
			th.dropped.Add(1)
		}
	})
}

func (th *throttle) pass() bool {
	th.mu.Lock()
	defer th.mu.Unlock()
	now := time.Now()
	if !th.last.IsZero() {
		th.tokens = min(5, th.tokens+now.Sub(th.last).Seconds()*20)
	}
	th.last = now
	if th.tokens >= 1 {
		th.tokens--
		return true
	}
	return false
}

// One subscriber on a throttled downlink loses most of its video and keeps
// asking for retransmissions; the publisher is asked for no more keyframes
// than before it came, and the other subscribers still get every frame.
func TestThrottledSubscriberIsIsolated(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, b := newReceiver(), newReceiver()
	joinRoom(t, ctx, srv, "a", "throttle", sdk.Options{OnTrack: a.onTrack})
	joinRoom(t, ctx, srv, "b", "throttle", sdk.Options{OnTrack: b.onTrack})
	pub := &publisher{}
	pub.publish(ctx, t, joinRoom(t, ctx, srv, "pub", "throttle", sdk.Options{}), 1, 0)
	waitUntil(t, "both subscribers receiving", func() bool { return a.tracksWithPackets(10) == 1 && b.tracksWithPackets(10) == 1 })

	// window measures the publisher's keyframe requests over the next 150
	// frames, and checks that a and b got every one of them.
	window := func(name string) int64 {
		from, k0 := pub.frame.Load()+1, pub.keyframes.Load()
		waitUntil(t, name+" window", func() bool { return pub.frame.Load() >= from+150 })
		k := pub.keyframes.Load() - k0
		for _, r := range []*receiver{a, b} {
			waitUntil(t, name+": every frame at the healthy subscribers", func() bool { return len(r.missing(from, from+150)) == 0 })
		}
		return k
	}
	before := window("before")

	th := &throttle{}
	c := newReceiver()
	joinRoom(t, ctx, srv, "c", "throttle", sdk.Options{OnTrack: c.onTrack, NetworkInterceptors: []interceptor.Factory{th}})
	waitUntil(t, "the throttled subscriber receiving", func() bool { return c.tracksWithPackets(10) == 1 })
	during := window("during")
	// The allocator pauses a video that does not fit (and retries it now
	// and then): either way the thin link must have been exercised.
	if pauses := metricstest.Scrape(t, srv.URL())["huddle_media_video_pauses_total"]; th.dropped.Load() < 50 && pauses == 0 {
		t.Fatalf("the throttle dropped only %d packets and no video was paused; the test did not exercise it", th.dropped.Load())
	}
	if during > before {
		t.Errorf("keyframe requests per 150 frames: %d before the throttled subscriber, %d with it", before, during)
	}
	t.Logf("throttle dropped %d packets; keyframe requests per 150 frames: %d before, %d during", th.dropped.Load(), before, during)
}

// Retransmissions are not tested end to end here: a loss simulated in a
// subscriber's interceptors happens after SRTP, whose replay protection
// then refuses the retransmission. TestNACKAnsweredFromTrackCache covers
// the path from the subscriber's RTCP to the rewritten resend.

// kernelHasGSO reports whether a UDP socket here takes UDP_SEGMENT.
func kernelHasGSO(t *testing.T) bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var opErr error
	rc.Control(func(fd uintptr) { _, opErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT) })
	return opErr == nil
}
