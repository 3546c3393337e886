package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

func TestScoreQuality(t *testing.T) {
	for _, c := range []struct {
		s    LinkStats
		want string
	}{
		{LinkStats{}, QualityExcellent},
		{LinkStats{LossPercent: 1, JitterMs: 10, RTTMs: 50}, QualityExcellent},
		{LinkStats{LossPercent: 3}, QualityGood},
		{LinkStats{RTTMs: 250}, QualityGood},
		{LinkStats{JitterMs: 40}, QualityGood},
		{LinkStats{LossPercent: 10}, QualityPoor},
		{LinkStats{RTTMs: 500}, QualityPoor},
		{LinkStats{JitterMs: 100}, QualityPoor},
	} {
		if got := ScoreQuality(c.s); got != c.want {
			t.Errorf("ScoreQuality(%+v) = %s, want %s", c.s, got, c.want)
		}
	}
}

// uplink sends n packets 20 ms apart, skipping every dropEvery-th (0: none),
// then resends the skipped ones (retransmissions must not hide the loss).
func uplink(q *QualityScorer, start uint16, n, dropEvery int, at time.Time) time.Time {
	var skipped []uint16
	for i := 0; i < n; i++ {
		seq := start + uint16(i)
		at = at.Add(20 * time.Millisecond)
		if dropEvery > 0 && i%dropEvery == dropEvery-1 {
			skipped = append(skipped, seq)
			continue
		}
		q.ObserveRTP(&rtp.Header{SSRC: 1, SequenceNumber: seq, Timestamp: uint32(i) * 960}, 48000, true, at)
	}
	for _, seq := range skipped {
		q.ObserveRTP(&rtp.Header{SSRC: 1, SequenceNumber: seq, Timestamp: uint32(seq-start) * 960}, 48000, true, at)
	}
	return at
}

func TestQualityScorerUplinkLoss(t *testing.T) {
	q := NewQualityScorer()
	at := uplink(q, 65000, 100, 0, time.Unix(1000, 0)) // across the wrap
	st, level := q.Sample()
	if level != QualityExcellent || st.LossPercent != 0 || st.JitterMs > 1 {
		t.Fatalf("clean window: %+v %s", st, level)
	}
	at = uplink(q, 65100, 100, 10, at)
	st, level = q.Sample()
	if level != QualityPoor || st.LossPercent < 9 || st.LossPercent > 11 {
		t.Fatalf("10%% loss window: %+v %s, want poor at about 10%%", st, level)
	}
	uplink(q, 65200, 100, 0, at)
	if st, level = q.Sample(); level != QualityExcellent {
		t.Fatalf("after the loss: %+v %s, want excellent", st, level)
	}
}

func TestQualityScorerJitter(t *testing.T) {
	q := NewQualityScorer()
	at := time.Unix(1000, 0)
	for i := 0; i < 200; i++ {
		// Packets every 20 ms of media time, arriving 0 or 60 ms late.
		late := time.Duration(i%2) * 60 * time.Millisecond
		q.ObserveRTP(&rtp.Header{SSRC: 1, SequenceNumber: uint16(i), Timestamp: uint32(i) * 960}, 48000, true, at.Add(time.Duration(i)*20*time.Millisecond+late))
	}
	st, level := q.Sample()
	if st.JitterMs < 30 || level == QualityExcellent {
		t.Fatalf("jittery uplink: %+v %s", st, level)
	}
	// The same arrivals on a video stream: no jitter counted.
	v := NewQualityScorer()
	for i := 0; i < 200; i++ {
		late := time.Duration(i%2) * 60 * time.Millisecond
		v.ObserveRTP(&rtp.Header{SSRC: 1, SequenceNumber: uint16(i), Timestamp: uint32(i) * 3000}, 90000, false, at.Add(time.Duration(i)*20*time.Millisecond+late))
	}
	if st, _ := v.Sample(); st.JitterMs != 0 {
		t.Fatalf("video arrivals counted as jitter: %+v", st)
	}
}

func TestQualityScorerReceiverReports(t *testing.T) {
	q := NewQualityScorer()
	now := time.Unix(1000, 0)
	// A report saying 25% lost, 10 ms jitter at 90 kHz, and an SR echoed
	// 100 ms ago of which 20 ms were spent at the receiver: RTT 80 ms.
	lsr := ntpMiddle(now.Add(-100 * time.Millisecond))
	q.ObserveReceiverReport(rtcp.ReceptionReport{FractionLost: 64, Jitter: 900, LastSenderReport: lsr, Delay: 65536 / 50}, 90000, 0, now)
	st, level := q.Sample()
	if level != QualityPoor || st.LossPercent != 25 || st.JitterMs != 10 || st.RTTMs < 75 || st.RTTMs > 85 {
		t.Fatalf("report: %+v %s", st, level)
	}
	// Loss the track had before the server is not the subscriber's.
	q.ObserveReceiverReport(rtcp.ReceptionReport{FractionLost: 64}, 90000, 24, now)
	if st, _ := q.Sample(); st.LossPercent > 1.5 {
		t.Fatalf("upstream loss counted against the subscriber: %+v", st)
	}
	// The next window has no report: loss is forgotten, RTT kept.
	st, level = q.Sample()
	if level != QualityExcellent || st.RTTMs < 75 {
		t.Fatalf("next window: %+v %s", st, level)
	}
}

func TestQualityScorerBoundsStreams(t *testing.T) {
	q := NewQualityScorer()
	for i := 0; i < 1000; i++ {
		q.ObserveRTP(&rtp.Header{SSRC: uint32(i)}, 90000, false, time.Unix(1000, 0))
	}
	if len(q.streams) != maxScoredStreams {
		t.Fatalf("%d streams tracked, want the bound %d", len(q.streams), maxScoredStreams)
	}
}
