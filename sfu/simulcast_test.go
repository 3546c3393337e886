package sfu

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// simulcastForwarder is a VP8 track with layers q, h and f whose sequence
// numbers, timestamps and picture ids all start apart, as a browser's do.
func simulcastForwarder(plis *atomic.Int64) *Forwarder {
	f := testForwarder(webrtc.RTPCodecTypeVideo, plis)
	for i := 1; i < maxLayers; i++ {
		f.attach(newSimLayer(i, "", nil, uint32(1234+i), webrtc.RTPCodecTypeVideo))
	}
	return f
}

// rawSimulcastVP8 is one single-packet VP8 frame of layer l (frame n) with
// a 15-bit picture id and TL0PICIDX, marshalled as the forwarder reads it.
func rawSimulcastVP8(l, n int, key bool) []byte {
	seq := uint16(1000*l*7 + n)
	ts := uint32(l*123456789) + uint32(n)*3000
	pic := uint16(l*5000+n) & 0x7fff
	tl0 := uint8(l*77 + n)
	frame := byte(0x01)
	if key {
		frame = 0x00
	}
	payload := []byte{0x90, 0xc0, 0x80 | byte(pic>>8), byte(pic), tl0, frame, 0x9d, 0x01, 0x2a, byte(l), byte(n)}
	h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: uint32(1234 + l), Marker: true}
	raw, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		panic(err)
	}
	return raw
}

// TestSimulcastSwitchKeepsStreamContinuous switches a subscriber between
// layers and checks what its decoder would see: every switch lands on a
// keyframe of the new layer, asked for when the switch was decided, and
// sequence numbers, timestamps, picture ids and TL0PICIDX continue without
// a jump or a step back.
func TestSimulcastSwitchKeepsStreamContinuous(t *testing.T) {
	var plis atomic.Int64
	f := simulcastForwarder(&plis)
	d, rec := testDownTrack(t, f)
	f.addDownTrack(d)
	var p packet
	n := 0
	keys := map[int]bool{} // frames at which each layer's keyframe comes
	frames := func(count int) {
		for range count {
			for l := range maxLayers {
				key := n == 0 || keys[l*100000+n]
				f.ingest(f.layer(int8(l)), &p, rawSimulcastVP8(l, n, key))
			}
			d.path.flush()
			n++
		}
	}
	// Beyond what a catch-up from the cache may replay, so that each
	// switch below must wait for a new keyframe.
	frames(maxCatchUp + 1)
	if d.CurrentLayer() != maxLayers-1 {
		t.Fatalf("started on layer %d, want the highest", d.CurrentLayer())
	}
	steps := []int8{0, 2, 1, 0}
	for _, to := range steps {
		before := plis.Load()
		d.SetMaxLayer(to)
		frames(5) // no keyframe yet: the old layer keeps flowing
		if int8(d.CurrentLayer()) == to {
			t.Fatalf("switched to layer %d without a keyframe", to)
		}
		if plis.Load() == before {
			// The forwarder throttles; the request may come a little later.
			waitFor(t, "a keyframe request for the new layer", func() bool { return plis.Load() > before })
		}
		keys[int(to)*100000+n] = true
		frames(5)
		if int8(d.CurrentLayer()) != to {
			t.Fatalf("on layer %d after a keyframe of layer %d", d.CurrentLayer(), to)
		}
		frames(maxCatchUp + 1)
	}
	if got := d.switches.Load(); got != uint64(len(steps)) {
		t.Errorf("%d switches, want %d", got, len(steps))
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	// A switch upwards may carry one frame twice (the old layer's, then
	// the new layer's keyframe of the same instant); none is ever lost.
	if len(rec.pkts) < n || len(rec.pkts) > n+len(steps) || d.path.caughtUp.Load() != 0 {
		t.Fatalf("wrote %d packets for %d frames and %d switches", len(rec.pkts), n, len(steps))
	}
	layerOf := func(i int) byte { return rec.payloads[i][9] }
	for i := 1; i < len(rec.pkts); i++ {
		a, b := rec.pkts[i-1], rec.pkts[i]
		if b.SequenceNumber != a.SequenceNumber+1 {
			t.Errorf("packet %d: seq %d after %d", i, b.SequenceNumber, a.SequenceNumber)
		}
		if dt := b.Timestamp - a.Timestamp; dt == 0 || dt > 90000 {
			t.Errorf("packet %d: timestamp step %d", i, dt)
		}
		pa, pb := rec.payloads[i-1], rec.payloads[i]
		picA := uint16(pa[2]&0x7f)<<8 | uint16(pa[3])
		picB := uint16(pb[2]&0x7f)<<8 | uint16(pb[3])
		if pb[2]&0x80 == 0 || (picB-picA)&0x7fff != 1 {
			t.Errorf("packet %d: picture id %d after %d", i, picB, picA)
		}
		if pb[4] != pa[4]+1 {
			t.Errorf("packet %d: TL0PICIDX %d after %d", i, pb[4], pa[4])
		}
		if layerOf(i) != layerOf(i-1) && pb[5]&0x01 != 0 {
			t.Errorf("packet %d: switch from layer %d to %d on a delta frame", i, layerOf(i-1), layerOf(i))
		}
	}
}

// TestSimulcastRetransmitAfterSwitch answers a NACK for a packet sent
// before a switch with the packet rewritten as it was first sent.
func TestSimulcastRetransmitAfterSwitch(t *testing.T) {
	var plis atomic.Int64
	f := simulcastForwarder(&plis)
	d, rec := testDownTrack(t, f)
	f.addDownTrack(d)
	var p packet
	for n := range 3 {
		for l := range maxLayers {
			f.ingest(f.layer(int8(l)), &p, rawSimulcastVP8(l, n, n == 0 || (l == 0 && n == 2)))
		}
		if n == 1 {
			d.SetMaxLayer(0)
		}
		d.path.flush()
	}
	if d.CurrentLayer() != 0 {
		t.Fatalf("on layer %d, want 0", d.CurrentLayer())
	}
	rec.mu.Lock()
	first := rec.pkts[0].Clone()
	firstPayload := append([]byte(nil), rec.payloads[0]...)
	rec.mu.Unlock()
	d.path.push(sendItem{d: d, seq: first.SequenceNumber, retransmit: true}, false)
	d.path.flush()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	last, lastPayload := rec.pkts[len(rec.pkts)-1], rec.payloads[len(rec.payloads)-1]
	if last.SequenceNumber != first.SequenceNumber || last.Timestamp != first.Timestamp || string(lastPayload) != string(firstPayload) {
		t.Errorf("retransmission differs: seq %d ts %d %x, first sent seq %d ts %d %x",
			last.SequenceNumber, last.Timestamp, lastPayload, first.SequenceNumber, first.Timestamp, firstPayload)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCatchUpFromCacheAsksNoKeyframe switches a subscriber to a layer whose
// last keyframe is still cached, and makes its queue overflow: both restart
// from the cached keyframe, with no keyframe request to the publisher, and
// the subscriber still sees one continuous stream starting at a keyframe.
func TestCatchUpFromCacheAsksNoKeyframe(t *testing.T) {
	var plis atomic.Int64
	f := simulcastForwarder(&plis)
	d, rec := testDownTrack(t, f)
	f.addDownTrack(d)
	var p packet
	n := 0
	frames := func(count int, key func(l, n int) bool) {
		for range count {
			for l := range maxLayers {
				f.ingest(f.layer(int8(l)), &p, rawSimulcastVP8(l, n, n == 0 || key(l, n)))
			}
			d.path.flush()
			n++
		}
	}
	none := func(int, int) bool { return false }
	frames(20, none)
	frames(1, func(l, _ int) bool { return l == 0 }) // a keyframe on q only
	frames(10, none)
	before := plis.Load()
	d.SetMaxLayer(0)
	frames(1, none)
	if d.CurrentLayer() != 0 {
		t.Fatalf("on layer %d, want 0 at once from the cache", d.CurrentLayer())
	}
	// A keyframe on q, then the queue overflows: the subscriber never
	// got it nor what followed.
	for l := range maxLayers {
		f.ingest(f.layer(int8(l)), &p, rawSimulcastVP8(l, n, l == 0))
	}
	n++
	d.path.mu.Lock()
	d.path.video = ring{items: make([]sendItem, videoQueueLen)}
	d.path.mu.Unlock()
	d.dropped.Store(true)
	frames(5, none)
	if plis.Load() != before {
		t.Errorf("%d keyframe requests; the cache had the keyframe", plis.Load()-before)
	}
	if got := d.path.caughtUp.Load(); got != 2 {
		t.Errorf("%d catch-ups, want 2 (the switch and the overflow)", got)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	switched := false
	for i := 1; i < len(rec.pkts); i++ {
		if rec.pkts[i].SequenceNumber != rec.pkts[i-1].SequenceNumber+1 {
			t.Errorf("packet %d: seq %d after %d", i, rec.pkts[i].SequenceNumber, rec.pkts[i-1].SequenceNumber)
		}
		if !switched && rec.payloads[i][9] == 0 {
			switched = true
			if rec.payloads[i][5]&0x01 != 0 {
				t.Errorf("packet %d: the switch to layer 0 starts on a delta frame", i)
			}
		}
	}
}

// A subscriber's downtrack is made, then negotiated, then listed with its
// track. Layers that arrive in between (a publisher's h and f follow its q
// by milliseconds) must still be its target: in the full suite one stayed
// on q for a minute on an unlimited link, while dynacast, seeing nobody on
// h and f, told the publisher to stop encoding them.
func TestLayersThatArriveBeforeTheDownTrackIsListed(t *testing.T) {
	var plis atomic.Int64
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	d := newDownTrack(f, nil, nil) // target picked while only q is there
	f.attach(newSimLayer(1, "h", nil, 1235, webrtc.RTPCodecTypeVideo))
	f.attach(newSimLayer(2, "f", nil, 1236, webrtc.RTPCodecTypeVideo))
	f.addDownTrack(d)
	if got := d.target.Load(); got != 2 {
		t.Fatalf("target layer %d, want 2 (f): the layers attached before the downtrack was listed were missed", got)
	}
}

// The allocator's new cap and a layer's arrival retarget a downtrack at
// once; whichever stores last must store what both changes together give.
func TestRetargetFromTwoSidesAtOnce(t *testing.T) {
	var plis atomic.Int64
	for range 500 {
		f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
		d := newDownTrack(f, nil, nil)
		d.SetMaxLayer(0)
		f.addDownTrack(d)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); d.SetMaxLayer(2) }()
		go func() { defer wg.Done(); f.attach(newSimLayer(2, "f", nil, 1236, webrtc.RTPCodecTypeVideo)) }()
		wg.Wait()
		if got := d.target.Load(); got != 2 {
			t.Fatalf("target layer %d after the cap rose to f as f arrived, want 2", got)
		}
	}
}
