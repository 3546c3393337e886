package sdk_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"

	"github.com/huddle-rtc/huddle/sdk"
)

// dropper loses every tenth video packet the first time it is sent, as a
// lossy uplink would; retransmissions pass.
type dropper struct {
	interceptor.NoOp
	mu      sync.Mutex
	seen    map[uint32]map[uint16]bool
	dropped atomic.Int64
}

func (d *dropper) NewInterceptor(string) (interceptor.Interceptor, error) { return d, nil }

func (d *dropper) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if info.MimeType != "video/VP8" {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		d.mu.Lock()
		if d.seen[h.SSRC] == nil {
			d.seen[h.SSRC] = map[uint16]bool{}
		}
		first := !d.seen[h.SSRC][h.SequenceNumber]
		d.seen[h.SSRC][h.SequenceNumber] = true
		d.mu.Unlock()
		if first && h.SequenceNumber%10 == 0 {
			d.dropped.Add(1)
			return len(payload), nil
		}
		return w.Write(h, payload, a)
	})
}

// Packets lost between the publisher and the SFU are repaired by NACK: the
// subscriber still sees every frame, in order.
func TestNACKRepairsUplinkLoss(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bLog := newFrameLog()
	join(t, ctx, srv, "bob", "lossy", sdk.Options{OnTrack: bLog.onTrack})
	d := &dropper{seen: map[uint32]map[uint16]bool{}}
	a := join(t, ctx, srv, "alice", "lossy", sdk.Options{NetworkInterceptors: []interceptor.Factory{d}})
	publishMedia(ctx, t, a)
	waitFor(t, "150 video frames ("+describe(bLog)+")", 30*time.Second, func() bool { return bLog.count("video") >= 150 })
	if d.dropped.Load() < 10 {
		t.Fatalf("only %d packets dropped; the test did not exercise loss", d.dropped.Load())
	}
	bLog.checkInOrder(t, "video")
	t.Logf("dropped %d uplink packets; bob got %d frames with no gap", d.dropped.Load(), bLog.count("video"))
}
