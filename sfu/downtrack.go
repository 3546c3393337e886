package sfu

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// downQueueLen bounds each subscriber's backlog of one track. A subscriber
// that falls this far behind loses packets and restarts at the next keyframe
// instead of holding up anyone else.
const downQueueLen = 256

// DownTrack is one subscriber's copy of one published track. It implements
// webrtc.TrackLocal itself (rather than sharing a TrackLocalStaticRTP) so
// that it owns its SSRC, sequence numbers and timestamps, and its own queue.
type DownTrack struct {
	fwd   *Forwarder
	ready *atomic.Bool              // the subscriber's transport is up; writes before are lost
	codec webrtc.RTPCodecCapability // the publisher's codec

	queue   chan *packet
	dropped atomic.Bool // set when enqueue found the queue full

	mu     sync.Mutex
	writer webrtc.TrackLocalWriter // nil until bound
	ssrc   uint32
	pt     uint8

	sender  *webrtc.RTPSender
	quality *QualityScorer // the subscriber's (quality.go); may be nil
	ctx     context.Context
	cancel  context.CancelFunc

	// Rewriting state; only the send goroutine touches it.
	started    bool
	waitKey    bool      // drop video until a keyframe
	resync     bool      // the next packet starts a new run after a gap
	runStart   uint16    // input sequence number that started the current run
	seqOffset  uint16    // input seq - output seq
	tsOffset   uint32    // input ts - output ts
	lastOut    uint16    // highest output seq sent
	lastIn     uint16    // highest input seq seen
	lastAsk    time.Time // last keyframe request while waiting for one
	skipped    bool      // packets were discarded while waiting for a keyframe
	maxSkipped uint16    // the newest of them
	hdr        rtp.Header
	sent       atomic.Uint64
}

func newDownTrack(parent context.Context, f *Forwarder, ready *atomic.Bool) *DownTrack {
	ctx, cancel := context.WithCancel(parent)
	d := &DownTrack{
		fwd:     f,
		ready:   ready,
		codec:   f.codec,
		queue:   make(chan *packet, downQueueLen),
		ctx:     ctx,
		cancel:  cancel,
		waitKey: f.kind == webrtc.RTPCodecTypeVideo,
	}
	go d.run()
	return d
}

// ID is the published track's id: the subscriber sees it as the track id.
func (d *DownTrack) ID() string { return d.fwd.info.ID }

// StreamID is the publisher's participant id, so a subscriber can tell whose
// track this is from the track alone.
func (d *DownTrack) StreamID() string { return d.fwd.info.PublisherID }

// RID is empty: a subscriber always gets a single stream.
func (d *DownTrack) RID() string { return "" }

// Kind is audio or video.
func (d *DownTrack) Kind() webrtc.RTPCodecType { return d.fwd.kind }

// Bind is called by Pion once the subscriber's PeerConnection has negotiated
// this track: from then on packets can flow.
func (d *DownTrack) Bind(t webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, ok := matchCodec(d.codec, t.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, fmt.Errorf("bind %s: subscriber has no %s: %w", d.ID(), d.codec.MimeType, webrtc.ErrUnsupportedCodec)
	}
	d.mu.Lock()
	d.writer = t.WriteStream()
	d.ssrc = uint32(t.SSRC())
	d.pt = uint8(c.PayloadType)
	d.mu.Unlock()
	d.fwd.RequestKeyframe()
	return c, nil
}

// Unbind stops sending.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	d.writer = nil
	d.mu.Unlock()
	return nil
}

// matchCodec finds the subscriber's payload type for the publisher's codec.
// For H.264 the profile and packetization mode must match too, or the
// subscriber could not decode what it gets.
func matchCodec(want webrtc.RTPCodecCapability, have []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var fallback *webrtc.RTPCodecParameters
	for i, c := range have {
		if !strings.EqualFold(c.MimeType, want.MimeType) || c.ClockRate != want.ClockRate {
			continue
		}
		if !strings.EqualFold(want.MimeType, webrtc.MimeTypeH264) {
			return c, true
		}
		if h264Profile(c.SDPFmtpLine) == h264Profile(want.SDPFmtpLine) &&
			fmtpValue(c.SDPFmtpLine, "packetization-mode") == fmtpValue(want.SDPFmtpLine, "packetization-mode") {
			return c, true
		}
		if fallback == nil {
			fallback = &have[i]
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// h264Profile is the profile part of profile-level-id (profile_idc and
// constraint flags); the level may differ, decoders handle lower levels.
func h264Profile(fmtp string) string {
	id := fmtpValue(fmtp, "profile-level-id")
	return id[:min(4, len(id))]
}

func fmtpValue(line, key string) string {
	for _, kv := range strings.Split(line, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, key) {
			return strings.ToLower(v)
		}
	}
	return ""
}

// enqueue is called by the forwarder for every packet; it never blocks.
func (d *DownTrack) enqueue(p *packet) {
	select {
	case d.queue <- p:
	default:
		d.dropped.Store(true)
	}
}

func (d *DownTrack) run() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case p := <-d.queue:
			d.send(p)
		}
	}
}

// send rewrites one packet into this subscriber's sequence and timestamp
// space and writes it. Output sequence numbers have no holes except where
// the publisher's packets were lost, so the subscriber's NACKs stay
// meaningful.
func (d *DownTrack) send(p *packet) {
	d.mu.Lock()
	w, ssrc, pt := d.writer, d.ssrc, d.pt
	d.mu.Unlock()
	if w == nil || !d.ready.Load() {
		// Not negotiated or not connected yet: anything written now would be
		// lost, so a keyframe sent now would never arrive.
		return
	}
	if d.dropped.Swap(false) {
		// Packets were lost here, not upstream: start a new run, at a
		// keyframe for video, with no gap in the numbers the subscriber sees.
		d.resync = true
		if d.Kind() == webrtc.RTPCodecTypeVideo {
			d.waitKey = true
			d.fwd.RequestKeyframe()
		}
	}
	in := p.header.SequenceNumber
	if d.waitKey {
		// A keyframe that arrives after newer packets (repaired by NACK
		// upstream) cannot start a run: the newer packets were discarded
		// while waiting, and the frames after them would reference them.
		stale := d.skipped && int16(in-d.maxSkipped) < 0
		if !p.keyframe || stale {
			if !d.skipped || int16(in-d.maxSkipped) > 0 {
				d.skipped, d.maxSkipped = true, in
			}
			// Keep asking while waiting, in case a request was lost.
			if stale || time.Since(d.lastAsk) > time.Second {
				d.lastAsk = time.Now()
				d.fwd.RequestKeyframe()
			}
			return
		}
		d.waitKey, d.skipped = false, false
	}
	switch {
	case !d.started:
		d.started = true
		d.runStart = in
		d.seqOffset = in - uint16(rand.Uint32())
		d.tsOffset = p.header.Timestamp - rand.Uint32()
		d.lastOut = in - d.seqOffset - 1
		d.lastIn = in - 1
	case d.resync:
		d.resync = false
		d.runStart = in
		d.seqOffset = in - (d.lastOut + 1)
		d.lastIn = in - 1
	}
	if int16(in-d.runStart) < 0 {
		return // older than the current run: its place in our numbering is gone
	}
	if len(p.payload) == 0 {
		// Padding only (bandwidth probes): skip it without using up an
		// output sequence number when it arrives in order.
		if in == d.lastIn+1 {
			d.seqOffset++
			d.lastIn = in
		}
		return
	}
	if int16(in-d.lastIn) > 0 {
		d.lastIn = in
	}
	out := in - d.seqOffset
	if int16(out-d.lastOut) > 0 {
		d.lastOut = out
	}
	// Copy into this downtrack's own header (only its send goroutine uses
	// it): the shared packet stays untouched and nothing is allocated.
	d.hdr = p.header
	h := &d.hdr
	h.SSRC = ssrc
	h.PayloadType = pt
	h.SequenceNumber = out
	h.Timestamp = p.header.Timestamp - d.tsOffset
	h.Padding = false
	h.PaddingSize = 0
	// Header extension ids are per PeerConnection; the subscriber's own
	// interceptors add the ones it negotiated.
	h.Extension = false
	h.Extensions = nil
	if _, err := w.WriteRTP(h, p.payload); err != nil {
		return // the PeerConnection is closing; the room removes us shortly
	}
	d.sent.Add(1)
}

// readRTCP drains the subscriber's feedback for this track (which the NACK
// responder needs) and turns picture loss reports into keyframe requests.
func (d *DownTrack) readRTCP() {
	buf := make([]byte, 1500)
	for {
		n, _, err := d.sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.fwd.RequestKeyframe()
			case *rtcp.ReceiverReport: // hook: loss, jitter and RTT to the quality scorer
				d.observeReport(p.Reports)
			}
		}
	}
}

// close stops the send goroutine; the sender is removed by the caller.
func (d *DownTrack) close() {
	d.cancel()
	d.fwd.removeDownTrack(d)
}
