package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// The load test's media is loadgen's; this is what it sends, and what it
// counts besides.

// loadStats are the load test's own counts, beyond loadgen's.
type loadStats struct {
	paused atomic.Int64 // videos now paused for bandwidth

	mu    sync.Mutex
	joins []time.Duration // Join calls
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
// small comfort-noise packet every 400 ms, as browsers do (dtxEvery).
// loadTalkers participants of a room talk at a time, and the talkers
// change every loadTurn.
const (
	loadAudioBytes = 80
	loadTalkers    = 2
	loadTurn       = 5 * time.Second
)

// loadSpec is what the publisher in seat (of seats in its room) sends:
// audio and (if kbps > 0) simulcast video at fps.
func loadSpec(fps, kbps, seat, seats int) publishSpec {
	spec := publishSpec{fps: fps, audioBytes: loadAudioBytes,
		talking: func(t time.Time) bool { return talking(t, seat, seats) }}
	if kbps > 0 {
		for _, l := range loadLayers {
			spec.video = append(spec.video, videoLayer{width: l.width, height: l.height,
				frameBytes: int(float64(kbps)*l.share) * 1000 / 8 / fps})
		}
	}
	return spec
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
