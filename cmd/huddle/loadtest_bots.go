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
	paused                                           atomic.Int64 // videos now paused for bandwidth
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

// Load-test video is simulcast, as the page publishes it: three VP8
// layers at 1/4, 1/2 and full resolution (their keyframes declare the
// size, which is what the server's allocator reads), at 1/6, 1/3 and all
// of the full layer's bitrate. Layers the server pauses (dynacast) are not
// sent, as an encoder would stop encoding them.
var loadLayers = [3]struct {
	width, height int
	share         float64 // of --video-kbps
}{{320, 180, 1.0 / 6}, {640, 360, 1.0 / 3}, {1280, 720, 1}}

// Audio at realistic rates: Opus at 32 kbit/s (80 bytes every 20 ms) while
// a participant talks; in silence, discontinuous transmission (DTX) sends a
// small comfort-noise packet every 400 ms, as browsers do. loadTalkers
// participants of a room talk at a time, and the talkers change every
// loadTurn.
const (
	loadTalkers  = 2
	loadTurn     = 5 * time.Second
	loadDTXEvery = 400 * time.Millisecond
)

// publishLoad sends audio and (if kbps > 0) simulcast video at their real
// rates until ctx ends; the owner waits on wg. seat is the publisher's
// index in its room, of seats: it decides when it talks.
func publishLoad(ctx context.Context, wg *sync.WaitGroup, r *sdk.Room, fps, kbps, seat, seats int, stats *loadStats) error {
	audio, err := r.PublishTrack(sdk.Opus, "microphone")
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendAudio(ctx, audio, seat, seats, stats)
	}()
	if kbps <= 0 {
		return nil
	}
	video, err := r.PublishSimulcast(sdk.VP8, "camera")
	if err != nil {
		return err
	}
	for layer, l := range loadLayers {
		size := int(float64(kbps)*l.share) * 1000 / 8 / fps
		write := func(s media.Sample) error { return video.WriteSample(layer, s) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendVideo(ctx, time.Second/time.Duration(fps), size, l.width, l.height, write, video.LayerActive, layer, stats, video.KeyframeRequests(layer))
		}()
	}
	return nil
}

// talking reports whether seat talks at t: loadTalkers seats at a time,
// taking turns.
func talking(t time.Time, seat, seats int) bool {
	if seats <= loadTalkers {
		return true
	}
	turn := int(t.UnixNano() / int64(loadTurn))
	return (seat-turn%seats+seats)%seats < loadTalkers
}

func sendAudio(ctx context.Context, t *sdk.LocalTrack, seat, seats int, stats *loadStats) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	frame := make([]byte, 80)
	var lastSent time.Time
	for n := uint32(0); ; n++ {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			size := len(frame)
			if !talking(now, seat, seats) {
				if now.Sub(lastSent) < loadDTXEvery {
					continue
				}
				size = loadStampAt + 8 // a comfort-noise frame is small
			}
			lastSent = now
			binary.BigEndian.PutUint32(frame[10:], n)
			binary.BigEndian.PutUint64(frame[loadStampAt:], uint64(time.Now().UnixNano()))
			if t.WriteSample(media.Sample{Data: frame[:size], Duration: 20 * time.Millisecond}) != nil {
				return
			}
			stats.sent.Add(1)
		}
	}
}

func sendVideo(ctx context.Context, interval time.Duration, size, width, height int, write func(media.Sample) error, active func(int) bool, layer int, stats *loadStats, keyframes <-chan struct{}) {
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
		if !active(layer) {
			key = true // a resumed layer starts at a keyframe
			continue
		}
		frame[0] = 0x11
		if key {
			// VP8 keyframe: start code, then 14-bit width and height.
			frame[0] = 0x10
			copy(frame[3:], []byte{0x9d, 0x01, 0x2a})
			binary.LittleEndian.PutUint16(frame[6:], uint16(width))
			binary.LittleEndian.PutUint16(frame[8:], uint16(height))
		}
		key = false
		binary.BigEndian.PutUint32(frame[10:], n)
		binary.BigEndian.PutUint64(frame[loadStampAt:], uint64(time.Now().UnixNano()))
		if write(media.Sample{Data: frame, Duration: interval}) != nil {
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
