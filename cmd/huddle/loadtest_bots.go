package main

import (
	"context"
	"encoding/binary"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/sdk"
)

// Load-test media: frames carry their send time (UnixNano) at loadStampAt, so
// a receiver in the same process measures the added latency of the path
// through the server. VP8 and Opus payloads are synthetic but of realistic
// sizes and rates.
const loadStampAt = 14

// loadStats are the receivers' counters, shared by every bot of a run.
type loadStats struct {
	sent, received, receivedBytes, expected, missing atomic.Int64
	latency                                          latencyHistogram

	mu         sync.Mutex
	joins      []time.Duration // Join calls
	firstMedia []time.Duration // from Join to the first packet
}

// latencyHistogram counts latencies in 1 ms buckets up to 2 s; above
// that in the last bucket. Bounded and lock-free.
type latencyHistogram struct{ buckets [2001]atomic.Int64 }

func (h *latencyHistogram) add(d time.Duration) {
	ms := int(d / time.Millisecond)
	h.buckets[min(max(ms, 0), len(h.buckets)-1)].Add(1)
}

// snapshot copies the counts, for differences between two moments.
func (h *latencyHistogram) snapshot() []int64 {
	out := make([]int64, len(h.buckets))
	for i := range h.buckets {
		out[i] = h.buckets[i].Load()
	}
	return out
}

// percentile of the counts in b (a difference of two snapshots), in ms.
func percentile(b []int64, p float64) float64 {
	var total int64
	for _, n := range b {
		total += n
	}
	if total == 0 {
		return 0
	}
	want := int64(float64(total)*p + 0.5)
	var seen int64
	for i, n := range b {
		seen += n
		if seen >= want && n > 0 {
			return float64(i) + 0.5
		}
	}
	return float64(len(b) - 1)
}

func durationPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// publishLoad sends video (if kbps > 0) and Opus audio at their real rates
// until ctx ends; the owner waits on wg.
func publishLoad(ctx context.Context, wg *sync.WaitGroup, r *sdk.Room, fps, kbps int, stats *loadStats) error {
	audio, err := r.PublishTrack(sdk.Opus, "microphone")
	if err != nil {
		return err
	}
	// Opus at 32 kbit/s: 80 bytes every 20 ms.
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendFrames(ctx, 20*time.Millisecond, 80, false, audio, stats, nil)
	}()
	if kbps <= 0 {
		return nil
	}
	video, err := r.PublishTrack(sdk.VP8, "camera")
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendFrames(ctx, time.Second/time.Duration(fps), kbps*1000/8/fps, true, video, stats, video.KeyframeRequests())
	}()
	return nil
}

func sendFrames(ctx context.Context, interval time.Duration, size int, vp8 bool, t *sdk.LocalTrack, stats *loadStats, keyframes <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	frame := make([]byte, max(size, loadStampAt+8))
	packets := int64(1 + (len(frame)-1)/1100)
	key := true
	for n := uint32(0); ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-keyframes:
			key = true
			continue
		case <-tick.C:
		}
		if vp8 {
			frame[0] = 0x11
			if key {
				frame[0] = 0x10
				copy(frame[3:], []byte{0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01}) // 640x360
			}
			key = false
		}
		binary.BigEndian.PutUint32(frame[10:], n)
		binary.BigEndian.PutUint64(frame[loadStampAt:], uint64(time.Now().UnixNano()))
		if t.WriteSample(media.Sample{Data: frame, Duration: interval}) != nil {
			return
		}
		stats.sent.Add(packets)
	}
}

// receiveLoad reads one remote track until it ends: packets, bytes, loss
// by sequence numbers (a late, repaired packet takes its loss back) and the
// latency of each frame's first packet.
func receiveLoad(t *sdk.RemoteTrack, joined time.Time, got *atomic.Bool, stats *loadStats) {
	video := t.Track.Kind().String() == "video"
	buf := make([]byte, 1600)
	var p rtp.Packet
	var vp8 codecs.VP8Packet
	var highest uint16
	started := false
	for {
		n, _, err := t.Track.Read(buf)
		if err != nil {
			return
		}
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		if !got.Swap(true) {
			stats.mu.Lock()
			stats.firstMedia = append(stats.firstMedia, time.Since(joined))
			stats.mu.Unlock()
		}
		stats.received.Add(1)
		stats.receivedBytes.Add(int64(n))
		switch d := int16(p.SequenceNumber - highest); {
		case !started:
			started, highest = true, p.SequenceNumber
			stats.expected.Add(1)
		case d > 0:
			highest = p.SequenceNumber
			stats.expected.Add(int64(d))
			stats.missing.Add(int64(d - 1))
		case d < 0 && d > -1000:
			stats.missing.Add(-1) // a repair (or reordering) filled a gap
		}
		payload := p.Payload
		if video {
			if _, err := vp8.Unmarshal(payload); err != nil || vp8.S != 1 || vp8.PID != 0 {
				continue
			}
			payload = vp8.Payload
		}
		if len(payload) >= loadStampAt+8 {
			sent := int64(binary.BigEndian.Uint64(payload[loadStampAt:]))
			stats.latency.add(time.Duration(time.Now().UnixNano() - sent))
		}
	}
}
