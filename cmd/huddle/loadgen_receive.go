package main

import (
	"encoding/binary"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/sdk"
)

// botReceiver is one bot's side of the media it receives; the counts go to
// its loadgen.
type botReceiver struct {
	g      *loadgen
	want   int       // tracks it should get (for minStamped)
	joined time.Time // when it began to join (for its first media)
	got    atomic.Bool
	// arrivals, when set, records each packet's hand-over by the bot's
	// SRTP session, which latency is then measured to.
	arrivals *arrivals

	mu      sync.Mutex
	stamped []*atomic.Int64 // per track: stamped packets, any time
}

// newReceiver is a bot that should receive want tracks; withArrivals
// measures its latency to the SRTP hand-over (32 KB per received stream)
// rather than to its read loop.
func (g *loadgen) newReceiver(want int, withArrivals bool) *botReceiver {
	b := &botReceiver{g: g, want: want, joined: time.Now()}
	if withArrivals {
		b.arrivals = newArrivals(g)
	}
	g.mu.Lock()
	g.bots = append(g.bots, b)
	g.mu.Unlock()
	return b
}

// options are the bot's SDK options: its published packets get their send
// stamps (after a pacer's wait, with pace > 0), and every track it
// receives is read by receive. A caller that wants more on a new track
// wraps OnTrack.
func (b *botReceiver) options(log *slog.Logger, pace time.Duration) sdk.Options {
	o := sdk.Options{Logger: log, OnTrack: b.receive,
		NetworkInterceptors: []interceptor.Factory{sendStamper{g: b.g, pace: pace}}}
	if b.arrivals != nil {
		o.Settings = b.arrivals.settings
	}
	return o
}

// minStamped is the fewest stamped packets on any track the bot should
// get, 0 while one is missing.
func (b *botReceiver) minStamped() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.stamped) < b.want {
		return 0
	}
	least := int64(math.MaxInt64)
	for _, n := range b.stamped {
		least = min(least, n.Load())
	}
	return least
}

// receive reads one remote track until it ends, counting each distinct
// packet inside the window, its stream's sequence gaps (a late packet,
// repaired by NACK, takes its gap back) and, for stamped ones, latency.
func (b *botReceiver) receive(t *sdk.RemoteTrack) {
	g := b.g
	video := t.Track.Kind() == webrtc.RTPCodecTypeVideo
	stream := b.arrivals.stream(uint32(t.Track.SSRC()))
	stamped := new(atomic.Int64)
	b.mu.Lock()
	b.stamped = append(b.stamped, stamped)
	b.mu.Unlock()
	var seqs seqTracker
	buf := make([]byte, 1600)
	for {
		n, _, err := t.Track.Read(buf)
		if err != nil {
			return
		}
		now := g.now()
		p := buf[:n]
		if len(p) < 12 {
			continue
		}
		if !b.got.Swap(true) {
			g.noteFirstMedia(time.Since(b.joined))
		}
		seq := binary.BigEndian.Uint16(p[2:])
		ahead, skipped, filled := seqs.observe(seq)
		frame, sent, ok := readStamp(p, video)
		if ok {
			stamped.Add(1)
		} else {
			frame = now
		}
		if (ahead == 0 && !filled) || !g.inWindow(frame) {
			continue // a duplicate, or outside the window
		}
		g.delivered.Add(1)
		g.bytes.Add(int64(n))
		g.expected.Add(ahead)
		switch {
		case skipped > 0:
			g.missing.Add(skipped)
		case filled:
			g.missing.Add(-1)
		}
		if !ok {
			continue
		}
		read := time.Duration(max(0, now-sent))
		g.readLatency.add(read)
		lat := read
		if at, ok := stream.arrived(seq); ok {
			lat = time.Duration(max(0, at-sent))
		}
		g.latency.add(lat)
	}
}

// seqHistory is how many recent sequence numbers of a stream a receiver
// remembers, to tell a late packet that fills a gap from a duplicate.
const seqHistory = 1024

// seqTracker follows one received stream's sequence numbers.
type seqTracker struct {
	started bool
	highest uint16
	seen    [seqHistory / 64]uint64 // a bit per number, modulo seqHistory
}

// observe notes a packet's sequence number: ahead is how many numbers it
// moves the stream on (1 for the first packet), skipped how many of those
// it jumped over, and filled whether it is a late packet that an earlier
// jump counted as skipped. A duplicate, or a packet too old to tell,
// counts nothing.
func (s *seqTracker) observe(seq uint16) (ahead, skipped int64, filled bool) {
	if !s.started {
		// Numbers before the first are taken as seen: no gap to fill.
		s.started, s.highest = true, seq
		for i := range s.seen {
			s.seen[i] = math.MaxUint64
		}
		return 1, 0, false
	}
	switch d := int16(seq - s.highest); {
	case d > 0:
		for i := 1; i < int(d) && i <= seqHistory; i++ {
			s.set(s.highest+uint16(i), false)
		}
		s.highest = seq
		s.set(seq, true)
		return int64(d), int64(d - 1), false
	case d < 0 && int(-d) < seqHistory && !s.has(seq):
		s.set(seq, true)
		return 0, 0, true
	}
	return 0, 0, false
}

func (s *seqTracker) has(seq uint16) bool {
	i := seq % seqHistory
	return s.seen[i/64]&(1<<(i%64)) != 0
}

func (s *seqTracker) set(seq uint16, seen bool) {
	i := seq % seqHistory
	if seen {
		s.seen[i/64] |= 1 << (i % 64)
	} else {
		s.seen[i/64] &^= 1 << (i % 64)
	}
}
