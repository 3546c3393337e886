package sfu

import (
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// BenchmarkForwardPath measures the SFU's own work per received video
// packet with 25 subscribers: parsing once, then rewriting and writing for
// each downtrack (to a writer that discards, so SRTP and UDP are left out).
//
//	go test -run - -bench ForwardPath -benchmem ./sfu/
func BenchmarkForwardPath(b *testing.B) {
	const subscribers = 25
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	downs := make([]*DownTrack, subscribers)
	for i := range downs {
		ready := &atomic.Bool{}
		ready.Store(true)
		d := newDownTrack(f, newSendPath(slog.Default()), ready)
		d.writer, d.ssrc, d.pt = discard{}, uint32(i), 96
		downs[i] = d
	}
	raw := make([]byte, 1200)
	raw[0], raw[1] = 0x80, 96
	raw[12], raw[13] = 0x10, 0x10 // VP8, start of a keyframe
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		raw[2], raw[3] = byte(i>>8), byte(i)
		var p packet
		if err := parseInto(&p, raw, webrtc.MimeTypeVP8, true); err != nil {
			b.Fatal(err)
		}
		for _, d := range downs {
			d.send(&p)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subscribers), "ns/subscriber-packet")
}

type discard struct{}

func (discard) WriteRTP(*rtp.Header, []byte) (int, error) { return 0, nil }
func (discard) Write(b []byte) (int, error)               { return len(b), nil }
