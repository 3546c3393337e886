package sdk_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// startServer runs a whole Huddle server on loopback with kernel-chosen
// ports, stopped when the test ends.
func startServer(t testing.TB) *node.Node {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith lets a test change the configuration before the start.
func startServerWith(t testing.TB, adjust func(*node.Config)) *node.Node {
	t.Helper()
	return sdktest.StartWith(t, adjust)
}

func mintToken(t testing.TB, srv *node.Node, identity, room string, g protocol.Grants) string {
	t.Helper()
	return sdktest.Token(t, srv, identity, room, g)
}

func join(t *testing.T, ctx context.Context, srv *node.Node, identity, room string, opts sdk.Options) *sdk.Room {
	t.Helper()
	r, err := sdk.Join(ctx, srv.URL(), mintToken(t, srv, identity, room, protocol.AllGrants()), opts)
	if err != nil {
		t.Fatalf("%s joins: %v", identity, err)
	}
	t.Cleanup(func() { r.Leave() })
	return r
}

// Synthetic media: frames carry a 32-bit counter at counterAt, so a
// receiver can tell order, gaps and duplicates. The SFU only reads the VP8
// payload descriptor and the frame tag's keyframe bit.
const (
	counterAt = 10
	frameSize = 900 // one RTP packet per frame
)

func vp8Frame(n uint32, key bool) []byte {
	f := make([]byte, frameSize)
	if key {
		f[0] = 0x10                                                   // frame tag: keyframe, show_frame
		copy(f[3:], []byte{0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}) // start code, 320x240
	} else {
		f[0] = 0x11 // interframe
	}
	binary.BigEndian.PutUint32(f[counterAt:], n)
	return f
}

func opusFrame(n uint32) []byte {
	f := make([]byte, 40)
	f[0] = 0x78 // TOC byte of a 20 ms frame
	binary.BigEndian.PutUint32(f[counterAt:], n)
	return f
}

// publishMedia sends VP8 at 50 fps and Opus every 20 ms until ctx ends,
// answering keyframe requests with a keyframe. It returns the audio track.
func publishMedia(ctx context.Context, t *testing.T, r *sdk.Room) *sdk.LocalTrack {
	t.Helper()
	audio, err := r.PublishTrack(sdk.Opus, "microphone")
	if err != nil {
		t.Fatal(err)
	}
	publishVideo(ctx, t, r, sdk.VP8, func(n uint32, key bool) []byte {
		if audio.WriteSample(media.Sample{Data: opusFrame(n), Duration: 20 * time.Millisecond}) != nil {
			return nil
		}
		return vp8Frame(n, key)
	})
	return audio
}

// publishVideo sends frame(n, key) every 20 ms until ctx ends or frame
// returns nil, making the next frame a keyframe whenever one is asked for.
func publishVideo(ctx context.Context, t *testing.T, r *sdk.Room, codec webrtc.RTPCodecCapability, frame func(n uint32, key bool) []byte) {
	t.Helper()
	video, err := r.PublishTrack(codec, "camera")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		key := true
		for n := uint32(0); ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-video.KeyframeRequests():
				key = true
			case <-tick.C:
			}
			f := frame(n, key)
			if f == nil || video.WriteSample(media.Sample{Data: f, Duration: 20 * time.Millisecond}) != nil {
				return
			}
			key = false
		}
	}()
}

// frameLog records the counters a receiver got, per track kind.
type frameLog struct {
	mu       sync.Mutex
	counters map[string][]uint32
	firstKey map[string]bool // kind -> was the first frame a keyframe
	from     map[string]string
}

func newFrameLog() *frameLog {
	return &frameLog{counters: map[string][]uint32{}, firstKey: map[string]bool{}, from: map[string]string{}}
}

// onTrack reads a remote track through a sample builder (which puts
// NACK-repaired packets back in order) and logs each frame's counter.
func (l *frameLog) onTrack(rt *sdk.RemoteTrack) {
	kind := rt.Info.Kind
	l.mu.Lock()
	l.from[kind] = rt.Participant.ID
	l.mu.Unlock()
	var sb *samplebuilder.SampleBuilder
	parse := vp8Counter
	switch mime := strings.ToLower(rt.Track.Codec().MimeType); mime {
	case "video/vp8":
		sb = samplebuilder.New(128, &codecs.VP8Packet{}, 90000)
	case "video/h264":
		sb = samplebuilder.New(128, &codecs.H264Packet{}, 90000)
		parse = h264Counter
	case "audio/opus":
		sb = samplebuilder.New(128, &codecs.OpusPacket{}, 48000)
		parse = opusCounter
	default:
		panic("test got unexpected codec " + mime)
	}
	for {
		pkt, _, err := rt.Track.ReadRTP()
		if err != nil {
			return
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			n, key, ok := parse(s.Data)
			if !ok {
				continue
			}
			l.mu.Lock()
			if len(l.counters[kind]) == 0 && kind == "video" {
				l.firstKey[kind] = key
			}
			l.counters[kind] = append(l.counters[kind], n)
			l.mu.Unlock()
		}
	}
}

func vp8Counter(f []byte) (uint32, bool, bool) {
	if len(f) < counterAt+4 {
		return 0, false, false
	}
	return binary.BigEndian.Uint32(f[counterAt:]), f[0]&0x01 == 0, true
}

func opusCounter(f []byte) (uint32, bool, bool) { return vp8Counter(f) }

func (l *frameLog) count(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.counters[kind])
}

// checkInOrder fails unless the counters of a kind rise by exactly one.
func (l *frameLog) checkInOrder(t *testing.T, kind string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counters[kind]
	for i := 1; i < len(c); i++ {
		if c[i] != c[i-1]+1 {
			t.Fatalf("%s frames out of order or lost: ...%v", kind, c[max(0, i-3):min(len(c), i+3)])
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describe(l *frameLog) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("video=%d audio=%d", len(l.counters["video"]), len(l.counters["audio"]))
}

func getJSON(t *testing.T, url string, v any) error {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
