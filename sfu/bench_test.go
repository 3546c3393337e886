package sfu

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// benchFanOut builds one video track with n subscribers, each with its own
// send path (as each subscriber PeerConnection has) and its own downlink
// estimator (GCC), writing to a writer that discards, so that SRTP and UDP
// are left out. Close the estimators when done.
func benchFanOut(tb testing.TB, n int) (*Forwarder, []*sendPath) {
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	paths := make([]*sendPath, n)
	for i := range paths {
		ready := &atomic.Bool{}
		ready.Store(true)
		paths[i] = newSendPath(slog.Default())
		paths[i].est = newEstimator(logging.NewDefaultLoggerFactory())
		tb.Cleanup(paths[i].est.close)
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

// The packets of a frame reach a send path together and leave in one
// batch: benchFrame is the bench's frame (1000 packets/s at 30 frames/s),
// and a TWCC feedback comes every feedbackFrames frames, about what a
// browser sends (one feedback per 50-100 ms).
const (
	benchFrame     = 32
	feedbackFrames = 2
)

// benchFeedback is a TWCC feedback saying that the n packets up to and
// including last arrived, 100 µs apart.
func benchFeedback(fb *rtcp.TransportLayerCC, last uint16, n int) {
	if len(fb.RecvDeltas) < n {
		fb.RecvDeltas = make([]*rtcp.RecvDelta, n)
		for i := range fb.RecvDeltas {
			fb.RecvDeltas[i] = &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 100}
		}
		fb.PacketChunks = []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta}}
	}
	fb.BaseSequenceNumber = last - uint16(n) + 1
	fb.PacketStatusCount = uint16(n)
	fb.PacketChunks[0].(*rtcp.RunLengthChunk).RunLength = uint16(n)
	fb.ReferenceTime++
	fb.FbPktCount++
}

// BenchmarkForwardPath measures the SFU's own work per received video
// packet with 25 subscribers through the production path: parse, store in
// the track's cache, queue on every subscriber's send path, then, once per
// frame, each send path's batch (copy out of the cache, rewrite, header
// extensions, write, the send times to the downlink estimator), run here
// on the caller's goroutine; and every feedbackFrames frames each
// subscriber's TWCC feedback into its estimator.
//
//	go test -run - -bench ForwardPath -benchmem ./sfu/
//
// Its allocations are Pion's GCC's, none Huddle's (add -memprofile and
// look): about two per record and a few per feedback, where a record
// stands for up to recordPackets packets (estimate.go).
func BenchmarkForwardPath(b *testing.B) {
	const subscribers = 25
	f, paths := benchFanOut(b, subscribers)
	raw := make([]byte, 1200)
	var p packet
	var fb rtcp.TransportLayerCC
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f.ingest(f.base, &p, benchPacket(raw, i))
		if i%benchFrame != benchFrame-1 && i != b.N-1 {
			continue
		}
		for _, s := range paths {
			s.flush()
			if i/benchFrame%feedbackFrames == feedbackFrames-1 {
				benchFeedback(&fb, s.twccSeq, feedbackFrames*benchFrame)
				s.est.feedback(&fb)
			}
		}
	}
	b.StopTimer()
	if sent := paths[0].sent.Load(); sent != uint64(b.N) {
		b.Fatalf("sent %d of %d", sent, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subscribers), "ns/subscriber-packet")
}

// BenchmarkForwardPathQueued is the same with the send paths run as in
// production, side by side: by the engine's send workers ("workers", a
// goroutine per CPU) and by each path's own goroutine ("own", what every
// path did before the workers). It adds the queue hand-off and the
// wake-ups. Packets come in bursts of 32 (a frame from a Pion publisher) or
// one at a time (paced, as a browser's pacer spreads a frame); the
// producer waits for each burst to reach every subscriber.
//
//	go test -run - -bench ForwardPathQueued -benchmem ./sfu/
func BenchmarkForwardPathQueued(b *testing.B) {
	for _, burst := range []int{benchFrame, 1} {
		for _, runner := range []string{"workers", "own"} {
			b.Run(fmt.Sprintf("burst=%d/%s", burst, runner), func(b *testing.B) {
				benchQueued(b, burst, runner == "workers")
			})
		}
	}
}

func benchQueued(b *testing.B, burst int, pooled bool) {
	const subscribers = 25
	f, paths := benchFanOut(b, subscribers)
	var w *sendWorkers
	if pooled {
		w = newSendWorkers(0)
		defer w.close()
	}
	a := netip.MustParseAddrPort("127.0.0.1:9")
	for _, s := range paths {
		s.workers = w
		s.remote.Store(&a)
		go s.run()
		defer s.close()
	}
	raw := make([]byte, 1200)
	var p packet
	wait := func(n int) {
		for _, s := range paths {
			for s.sent.Load() < uint64(n) {
				runtime.Gosched()
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f.ingest(f.base, &p, benchPacket(raw, i))
		if i%burst == burst-1 {
			wait(i + 1)
		}
	}
	wait(b.N)
	b.StopTimer()
	var wakes uint64
	for _, s := range paths {
		if s.dropped.Load() != 0 {
			b.Fatalf("a queue overflowed")
		}
		wakes += s.wakes.Load()
	}
	if w != nil {
		wakes += w.wakeups.Load()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subscribers), "ns/subscriber-packet")
	b.ReportMetric(float64(wakes)/float64(b.N), "wakeups/packet")
}

type discard struct{}

func (discard) WriteRTP(*rtp.Header, []byte) (int, error) { return 0, nil }
func (discard) Write(b []byte) (int, error)               { return len(b), nil }

// countRecords stands in for GCC's recorder and allocates nothing.
type countRecords struct{ n int }

func (c *countRecords) Write(_ *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
	c.n++
	return len(p), nil
}

// The whole fan-out path, estimator included, allocates nothing in
// Huddle's code: BenchmarkForwardPath's allocations are GCC's own (here
// its recorder is replaced by one that allocates nothing).
func TestForwardPathAllocatesNothing(t *testing.T) {
	f, paths := benchFanOut(t, 25)
	recs := &countRecords{}
	for _, s := range paths {
		s.est.gcc = recs
	}
	raw := make([]byte, 1200)
	var p packet
	i := 0
	frame := func() {
		for range benchFrame {
			f.ingest(f.base, &p, benchPacket(raw, i))
			i++
		}
		for _, s := range paths {
			s.flush()
		}
	}
	frame() // the first keyframe starts the downtracks
	if allocs := leastAllocs(frame); allocs != 0 {
		t.Fatalf("%.1f allocations per frame of %d packets to %d subscribers", allocs, benchFrame, len(paths))
	}
	if want := 51 * 25 * benchFrame / recordPackets; recs.n < want {
		t.Fatalf("%d records to the estimators, want at least %d", recs.n, want)
	}
}

// leastAllocs is the fewest allocations per run of f over three
// measurements: testing.AllocsPerRun counts the whole process's, and a
// goroutine an earlier test left closing may allocate during one; an
// allocation of f's own shows in every measurement.
func leastAllocs(f func()) float64 {
	least := testing.AllocsPerRun(50, f)
	for range 2 {
		least = min(least, testing.AllocsPerRun(50, f))
	}
	return least
}
