package sfu

import (
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// benchFanOut builds one video track with n subscribers, each with its own
// send path (as each subscriber PeerConnection has) writing to a writer that
// discards, so that SRTP and UDP are left out.
func benchFanOut(n int) (*Forwarder, []*sendPath) {
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	paths := make([]*sendPath, n)
	for i := range paths {
		ready := &atomic.Bool{}
		ready.Store(true)
		paths[i] = newSendPath(slog.Default())
		d := newDownTrack(f, paths[i], ready)
		d.writer, d.ssrc, d.pt = discard{}, uint32(i), 96
		d.ext = extIDs{absSendTime: 2, twcc: 3} // what browsers negotiate
		f.addDownTrack(d)
	}
	return f, paths
}

func benchPacket(raw []byte, i int) []byte {
	raw[0], raw[1] = 0x80, 96
	raw[2], raw[3] = byte(i>>8), byte(i)
	raw[12] = 0x10 // VP8 start of partition
	raw[13] = 0x11 // interframe...
	if i == 0 {
		raw[13] = 0x10 // ...except the first, so that the downtracks start
	}
	return raw
}

// BenchmarkForwardPath measures the SFU's own work per received video
// packet with 25 subscribers through the production path: parse, store in
// the track's cache, queue on every subscriber's send path, then each send
// path's batch (copy out of the cache, rewrite, header extensions, write),
// run here on the caller's goroutine.
//
//	go test -run - -bench ForwardPath -benchmem ./sfu/
func BenchmarkForwardPath(b *testing.B) {
	const subscribers = 25
	f, paths := benchFanOut(subscribers)
	raw := make([]byte, 1200)
	var p packet
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f.ingest(f.base, &p, benchPacket(raw, i))
		for _, s := range paths {
			s.flush()
		}
	}
	b.StopTimer()
	if sent := paths[0].sent.Load(); sent != uint64(b.N) {
		b.Fatalf("sent %d of %d", sent, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subscribers), "ns/subscriber-packet")
}

// BenchmarkForwardPathQueued is the same with every send path's goroutine
// running, as in production: it adds the queue hand-off and the wake-ups.
func BenchmarkForwardPathQueued(b *testing.B) {
	const subscribers = 25
	f, paths := benchFanOut(subscribers)
	for _, s := range paths {
		go s.run()
		defer s.close()
	}
	raw := make([]byte, 1200)
	var p packet
	wait := func(n int) {
		for _, s := range paths {
			for s.sent.Load() < uint64(n) {
				// Spinning keeps the producer from outrunning the queues
				// (which would drop, not measure).
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f.ingest(f.base, &p, benchPacket(raw, i))
		if i%256 == 255 {
			wait(i + 1)
		}
	}
	wait(b.N)
	b.StopTimer()
	for _, s := range paths {
		if s.dropped.Load() != 0 {
			b.Fatalf("a queue overflowed")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subscribers), "ns/subscriber-packet")
}

type discard struct{}

func (discard) WriteRTP(*rtp.Header, []byte) (int, error) { return 0, nil }
func (discard) Write(b []byte) (int, error)               { return len(b), nil }
