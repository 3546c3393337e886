package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/sdk"
)

// Every packet the bench publishes carries a stamp at stampAt bytes into
// its payload (past the VP8 descriptor for video): a magic word, the
// frame's time, then the packet's send time, in nanoseconds since the load
// began. The frame time decides the measuring window (all packets of a
// frame alike, so counts are exact); the send time is rewritten as the
// packet leaves the publisher's Pion stack for SRTP and the socket
// (sendStamper), so a packet's latency does not include the time its
// frame's earlier packets took to be sent. Latency needs no clock sync:
// publishers and subscribers share this process's clock.
const (
	stampAt    = 16
	stampLen   = 20
	stampMagic = 0x48424e43 // "HBNC"
	// vp8Fragment is what Pion's VP8 payloader puts in each packet of a
	// sample (1200-byte MTU, RTP header, 4-byte descriptor with a 15-bit
	// picture id): frames of whole fragments give equal-sized packets, each
	// starting a fragment where its stamp is.
	vp8Fragment = 1200 - 12 - 4
)

// load is one run's publishers and subscribers and what they counted.
type load struct {
	epoch time.Time
	// The measuring window, in nanoseconds since epoch; packets stamped
	// inside it are counted.
	from, to atomic.Int64

	published atomic.Int64
	mu        sync.Mutex
	receivers []*benchReceiver
}

func newLoad() *load {
	l := &load{epoch: time.Now()}
	l.from.Store(1 << 62)
	l.to.Store(1 << 62)
	return l
}

func (l *load) now() int64 { return int64(time.Since(l.epoch)) }

func (l *load) inWindow(ns int64) bool { return ns >= l.from.Load() && ns < l.to.Load() }

func stamp(b []byte, ns int64) {
	binary.BigEndian.PutUint32(b[stampAt:], stampMagic)
	binary.BigEndian.PutUint64(b[stampAt+4:], uint64(ns))
	binary.BigEndian.PutUint64(b[stampAt+12:], uint64(ns))
}

// publish sends synthetic VP8 at pps packets/s in fps frames of whole
// fragments (and Opus every 20 ms with audio) until ctx ends, answering
// keyframe requests with a keyframe.
func (l *load) publish(ctx context.Context, wg *sync.WaitGroup, r *sdk.Room, pps, fps int, audio bool) error {
	video, err := r.PublishTrack(sdk.VP8, "camera")
	if err != nil {
		return err
	}
	perFrame := max(1, pps/fps)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(fps))
		defer tick.Stop()
		frame := make([]byte, perFrame*vp8Fragment)
		key := true
		for {
			select {
			case <-ctx.Done():
				return
			case <-video.KeyframeRequests():
				key = true
			case <-tick.C:
			}
			frame[0] = 0x11 // VP8 frame tag: interframe
			if key {
				frame[0] = 0x10
			}
			key = false
			ns := l.now()
			for i := range perFrame {
				stamp(frame[i*vp8Fragment:], ns)
			}
			if video.WriteSample(media.Sample{Data: frame, Duration: time.Second / time.Duration(fps)}) != nil {
				return
			}
			if l.inWindow(ns) {
				l.published.Add(int64(perFrame))
			}
		}
	}()
	if !audio {
		return nil
	}
	mic, err := r.PublishTrack(sdk.Opus, "microphone")
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		frame := make([]byte, 100)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ns := l.now()
			stamp(frame, ns)
			if mic.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond}) != nil {
				return
			}
			if l.inWindow(ns) {
				l.published.Add(1)
			}
		}
	}()
	return nil
}

// Latency histogram: latencyStep wide buckets up to latencyBuckets of them;
// anything slower lands in the last.
const (
	latencyStep    = 20 * time.Microsecond
	latencyBuckets = 25000 // 500 ms
)

// benchReceiver is one subscriber bot's counts.
type benchReceiver struct {
	tracks    int // how many it should get
	mu        sync.Mutex
	stamped   map[string]int64 // packets with a valid stamp, per track, any time
	delivered int64            // stamped inside the window
	gaps      int64            // sequence numbers skipped inside the window
	hist      []uint32         // latency to the SRTP hand-over (bench_arrival.go)
	histRead  []uint32         // latency to the bot's read loop
	max       int64
	arrivals  *arrivals
}

func (l *load) newReceiver(tracks int) *benchReceiver {
	r := &benchReceiver{tracks: tracks, stamped: map[string]int64{}, hist: make([]uint32, latencyBuckets),
		histRead: make([]uint32, latencyBuckets), arrivals: newArrivals(l)}
	l.mu.Lock()
	l.receivers = append(l.receivers, r)
	l.mu.Unlock()
	return r
}

// read counts one remote track until it ends.
func (l *load) read(r *benchReceiver, t *sdk.RemoteTrack) {
	video := t.Info.Kind == "video"
	stream := r.arrivals.stream(uint32(t.Track.SSRC()))
	buf := make([]byte, 1600)
	var last uint16
	started := false
	for {
		n, _, err := t.Track.Read(buf)
		if err != nil {
			return
		}
		now := l.now()
		p := buf[:n]
		if len(p) < 12 {
			continue
		}
		seq := binary.BigEndian.Uint16(p[2:])
		off := rtpPayloadOffset(p)
		if video {
			off += vp8DescriptorLen(p[min(off, len(p)):])
		}
		if off+stampAt+stampLen > len(p) || binary.BigEndian.Uint32(p[off+stampAt:]) != stampMagic {
			continue
		}
		sent := int64(binary.BigEndian.Uint64(p[off+stampAt+4:]))
		left := int64(binary.BigEndian.Uint64(p[off+stampAt+12:]))
		r.mu.Lock()
		r.stamped[t.Info.ID]++
		if l.inWindow(sent) {
			r.delivered++
			if started && int16(seq-last) > 1 {
				r.gaps += int64(seq - last - 1)
			}
			read := max(0, now-left)
			r.histRead[min(latencyBuckets-1, read/int64(latencyStep))]++
			lat := read
			if at, ok := stream.arrived(seq); ok {
				lat = max(0, at-left)
			}
			r.hist[min(latencyBuckets-1, lat/int64(latencyStep))]++
			r.max = max(r.max, lat)
		}
		if !started || int16(seq-last) > 0 {
			last = seq
		}
		started = true
		r.mu.Unlock()
	}
}

// minStamped is the fewest stamped packets any receiver has on any of
// the tracks it should get (0 when one is missing).
func (l *load) minStamped() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	least := int64(1 << 62)
	for _, r := range l.receivers {
		r.mu.Lock()
		if len(r.stamped) < r.tracks {
			least = 0
		}
		for _, n := range r.stamped {
			least = min(least, n)
		}
		r.mu.Unlock()
	}
	return least
}

// totals sums the receivers' window counts and latency percentiles: to
// the SRTP hand-over (p50, p99, worst) and to the bots' read loops
// (readP99).
func (l *load) totals() (delivered, gaps int64, p50, p99, worst, readP99 time.Duration) {
	hist := make([]uint64, latencyBuckets)
	histRead := make([]uint64, latencyBuckets)
	l.mu.Lock()
	defer l.mu.Unlock()
	var maxNs int64
	for _, r := range l.receivers {
		r.mu.Lock()
		delivered += r.delivered
		gaps += r.gaps
		for i, c := range r.hist {
			hist[i] += uint64(c)
		}
		for i, c := range r.histRead {
			histRead[i] += uint64(c)
		}
		maxNs = max(maxNs, r.max)
		r.mu.Unlock()
	}
	pct := func(hist []uint64, q float64) time.Duration {
		want := uint64(q * float64(delivered))
		var seen uint64
		for i, c := range hist {
			seen += c
			if seen > want {
				return time.Duration(i+1) * latencyStep // upper edge of the bucket
			}
		}
		return time.Duration(maxNs)
	}
	if delivered == 0 {
		return 0, gaps, 0, 0, 0, 0
	}
	return delivered, gaps, pct(hist, 0.50), pct(hist, 0.99), time.Duration(maxNs), pct(histRead, 0.99)
}

func rtpPayloadOffset(p []byte) int {
	off := 12 + 4*int(p[0]&0x0f)
	if p[0]&0x10 != 0 && len(p) >= off+4 {
		off += 4 + 4*int(binary.BigEndian.Uint16(p[off+2:]))
	}
	return off
}

// vp8DescriptorLen parses the VP8 payload descriptor (RFC 7741 4.2).
func vp8DescriptorLen(p []byte) int {
	if len(p) < 1 {
		return 0
	}
	i := 1
	if p[0]&0x80 == 0 || len(p) < 2 {
		return i
	}
	ext := p[1]
	i = 2
	if ext&0x80 != 0 && len(p) > i {
		if p[i]&0x80 != 0 {
			i++
		}
		i++
	}
	if ext&0x40 != 0 {
		i++
	}
	if ext&0x30 != 0 {
		i++
	}
	return i
}

// join brings the subscribers, then the publishers, into one room of the
// server at base and starts publishing. The returned stop ends the load
// and waits for it; call it even when join fails.
func (l *load) join(ctx context.Context, cfg benchConfig, base string) (stop func(), err error) {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	var rooms []*sdk.Room
	var wg sync.WaitGroup
	lctx, cancel := context.WithCancel(ctx)
	stop = func() {
		cancel()
		for _, r := range rooms {
			r.Leave()
		}
		wg.Wait()
	}
	room := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	tracksPer := 1 // per publisher
	if cfg.audio {
		tracksPer = 2
	}
	bot := func(name string, tracks int) (*sdk.Room, error) {
		tok, err := devToken(base, name, room)
		if err != nil {
			return nil, err
		}
		rcv := l.newReceiver(tracks)
		r, err := sdk.Join(ctx, base, tok, sdk.Options{Logger: quiet, Settings: rcv.arrivals.settings,
			NetworkInterceptors: []interceptor.Factory{sendStamper{l: l, pace: cfg.paceSlot()}},
			OnTrack:             func(t *sdk.RemoteTrack) { l.read(rcv, t) }})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rooms = append(rooms, r)
		return r, nil
	}
	for i := range cfg.subscribers {
		if _, err := bot(fmt.Sprintf("sub%d", i), tracksPer*cfg.publishers); err != nil {
			return stop, err
		}
	}
	for i := range cfg.publishers {
		// Publishers receive each other's tracks, as in a meeting; they
		// count as receivers of those.
		r, err := bot(fmt.Sprintf("pub%d", i), tracksPer*(cfg.publishers-1))
		if err != nil {
			return stop, err
		}
		if err := l.publish(lctx, &wg, r, cfg.pps, cfg.fps, cfg.audio); err != nil {
			return stop, fmt.Errorf("publisher %d: %w", i, err)
		}
	}
	return stop, nil
}
