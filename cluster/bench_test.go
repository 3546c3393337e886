package cluster

import (
	"bytes"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/internal/redistest"
)

// A signaling-sized frame (a small JSON message).
var benchFrame = bytes.Repeat([]byte{'x'}, 200)

// BenchmarkRelay measures the relay through a real redis-server: frames
// per second one way (a window of frames in flight, as many clients make),
// and the round-trip latency of one frame at a time.
func BenchmarkRelay(b *testing.B) {
	b.Run("oneway", func(b *testing.B) {
		srv := redistest.Start(b)
		var received atomic.Int64
		startNode(b, srv, Config{ID: "owner", Accept: func(l *Link) {
			for range l.Frames() {
				received.Add(1)
			}
		}})
		edge := startNode(b, srv, Config{ID: "edge"})
		l, err := edge.Dial(ctxT(b), "owner", "room", nil)
		if err != nil {
			b.Fatal(err)
		}
		const window = 512
		b.SetBytes(int64(len(benchFrame)))
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			for int64(i)-received.Load() > window {
				time.Sleep(50 * time.Microsecond)
			}
			if err := l.Send(benchFrame); err != nil {
				b.Fatal(err)
			}
		}
		for received.Load() < int64(b.N) {
			select {
			case <-l.Done():
				code, reason := l.CloseReason()
				b.Fatalf("link closed: %d %s", code, reason)
			case <-time.After(50 * time.Microsecond):
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "frames/s")
	})
	b.Run("roundtrip", func(b *testing.B) {
		srv := redistest.Start(b)
		startNode(b, srv, Config{ID: "owner", Accept: echo})
		edge := startNode(b, srv, Config{ID: "edge"})
		l, err := edge.Dial(ctxT(b), "owner", "room", nil)
		if err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if err := l.Send(benchFrame); err != nil {
				b.Fatal(err)
			}
			if _, ok := <-l.Frames(); !ok {
				code, reason := l.CloseReason()
				b.Fatalf("link closed: %d %s", code, reason)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	})
}

// BenchmarkPlace: Place of a room that already has a live owner (every
// join after the first), and a claim of a new room.
func BenchmarkPlace(b *testing.B) {
	srv := redistest.Start(b)
	n := startNode(b, srv, Config{ID: "a"})
	startNode(b, srv, Config{ID: "b"})
	b.Run("existing", func(b *testing.B) {
		if _, err := n.Place(ctxT(b), "placed"); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := n.Place(ctxT(b), "placed"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("claim", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if o, err := n.Place(ctxT(b), fmt.Sprintf("new-%d-%d", b.N, i)); err != nil || o.Epoch != 1 {
				b.Fatalf("%+v %v", o, err)
			}
		}
	})
}
