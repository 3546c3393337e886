package sfu

import (
	"bytes"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func rawVP8(seq uint16, key bool) []byte {
	b := []byte{0x80, 96, byte(seq >> 8), byte(seq), 0, 0, 0, byte(seq), 0, 0, 0, 5, 0x10, 0x11, 0x9d, byte(seq)}
	if key {
		b[13] = 0x10
	}
	return b
}

func marshal(t *testing.T, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A subscriber's NACK reaches its send path through the RTCP handler and is
// answered from the track's packet cache: the same packet, under the same
// output sequence number. NACKs for what was never sent, or about another
// SSRC, send nothing.
func TestNACKAnsweredFromTrackCache(t *testing.T) {
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	d, rec := testDownTrack(t, f)
	f.addDownTrack(d)
	d.path.bind(99, d)
	var p packet
	for seq := uint16(100); seq < 110; seq++ {
		f.ingest(f.base, &p, rawVP8(seq, seq == 100))
	}
	d.path.flush()
	if len(rec.pkts) != 10 {
		t.Fatalf("sent %d packets, want 10", len(rec.pkts))
	}
	lost := rec.pkts[3].SequenceNumber
	d.path.handleRTCP(99, marshal(t, &rtcp.TransportLayerNack{MediaSSRC: 99, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{lost, lost + 1, lost + 200})}))
	d.path.handleRTCP(99, marshal(t, &rtcp.TransportLayerNack{MediaSSRC: 98, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{lost})}))
	d.path.flush()
	if len(rec.pkts) != 12 {
		t.Fatalf("sent %d packets after the NACKs, want 12", len(rec.pkts))
	}
	for i, want := range []int{3, 4} {
		got := rec.pkts[10+i]
		if got.SequenceNumber != rec.pkts[want].SequenceNumber || got.Timestamp != rec.pkts[want].Timestamp || !bytes.Equal(rec.payloads[10+i], rec.payloads[want]) {
			t.Errorf("retransmission %d: seq %d ts %d, want the packet sent as %d", i, got.SequenceNumber, got.Timestamp, rec.pkts[want].SequenceNumber)
		}
	}
	if d.path.resent.Load() != 2 {
		t.Errorf("resent counter %d, want 2", d.path.resent.Load())
	}
}

// Keyframe requests from a subscriber go to the forwarder of the track
// named by the SSRC, which throttles them for all subscribers together.
func TestPLIRoutedBySSRC(t *testing.T) {
	var plis, other atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	g := testForwarder(webrtc.RTPCodecTypeVideo, &other)
	path := newSendPath(slog.Default())
	path.bind(1, newDownTrack(f, path, &atomic.Bool{}))
	path.bind(2, newDownTrack(g, path, &atomic.Bool{}))
	path.handleRTCP(1, marshal(t, &rtcp.PictureLossIndication{MediaSSRC: 1}))
	path.handleRTCP(2, marshal(t, &rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: 2}}}))
	path.handleRTCP(2, []byte{0x81, 0xce, 0, 0xff}) // malformed: ignored
	if plis.Load() != 1 || other.Load() != 1 {
		t.Fatalf("keyframe requests: %d and %d, want 1 each", plis.Load(), other.Load())
	}
}

// Header extension ids are per PeerConnection: the audio level arrives
// under the publisher's id and leaves under the subscriber's; the send time
// and the transport-wide sequence number are written per subscriber PC.
func TestHeaderExtensionsRewrittenForSubscriber(t *testing.T) {
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeAudio, &plis)
	f.ext = extIDs{audioLevel: 1}
	d, rec := testDownTrack(t, f)
	d.ext = extIDs{audioLevel: 5, absSendTime: 6, twcc: 7}
	f.addDownTrack(d)
	var p packet
	for seq := uint16(1); seq <= 2; seq++ {
		h := rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, SSRC: 5}
		if err := h.SetExtension(1, []byte{0x80 | 30}); err != nil {
			t.Fatal(err)
		}
		if err := h.SetExtension(3, []byte{9, 9}); err != nil { // unknown to the subscriber
			t.Fatal(err)
		}
		raw, err := (&rtp.Packet{Header: h, Payload: []byte{0x78, 1, 2}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		f.ingest(f.base, &p, raw)
	}
	d.path.flush()
	if len(rec.pkts) != 2 {
		t.Fatalf("sent %d packets, want 2", len(rec.pkts))
	}
	for i, h := range rec.pkts {
		if lvl := h.GetExtension(5); !bytes.Equal(lvl, []byte{0x80 | 30}) {
			t.Errorf("packet %d: audio level %x under the subscriber's id", i, lvl)
		}
		if h.GetExtension(1) != nil || h.GetExtension(3) != nil {
			t.Errorf("packet %d: publisher's extension ids leaked", i)
		}
		if len(h.GetExtension(6)) != 3 {
			t.Errorf("packet %d: no abs-send-time", i)
		}
		if tw := h.GetExtension(7); len(tw) != 2 || int(tw[1]) != i+1 {
			t.Errorf("packet %d: transport-wide seq %x, want %d", i, tw, i+1)
		}
	}
}

// Keyframe requests are counted as received by type and as sent upstream
// by reason; a request held back by the throttle counts, when it goes,
// under the reason that started the wait.
func TestKeyframeRequestsCountedByReason(t *testing.T) {
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	e := &Engine{}
	e.metrics = newEngineMetrics(e)
	f.room = &Room{engine: e}
	sent := func(why keyframeReason) uint64 { return e.metrics.keyframesSent[why].Load() }

	d, _ := testDownTrack(t, f)
	d.path.bind(1, d)
	// A subscriber that has not started asks for its first keyframe.
	d.send(vp8(1, 0, false), 0)
	if sent(kfStart) != 1 {
		t.Fatalf("start requests %d, want 1", sent(kfStart))
	}
	// Its PLI inside the throttle window waits, then goes as "subscriber".
	d.path.handleRTCP(1, marshal(t, &rtcp.PictureLossIndication{MediaSSRC: 1}))
	deadlinePoll(t, func() bool { return sent(kfSubscriber) == 1 })
	d.path.handleRTCP(1, marshal(t, &rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: 1}}}))
	deadlinePoll(t, func() bool { return sent(kfSubscriber) == 2 })
	if d.path.plis.Load() != 1 || d.path.firs.Load() != 1 {
		t.Errorf("received PLI %d, FIR %d; want 1 each", d.path.plis.Load(), d.path.firs.Load())
	}
	f.RequestKeyframe()
	deadlinePoll(t, func() bool { return sent(kfAdmin) == 1 })
	if got := plis.Load(); got != 4 {
		t.Errorf("%d PLIs written, want 4 (one per request counted)", got)
	}
	if sent(kfSwitch) != 0 || sent(kfRecovery) != 0 {
		t.Errorf("switch %d, recovery %d requests counted; none were made", sent(kfSwitch), sent(kfRecovery))
	}
}
