package sfu

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// historyLen is how many of its output sequence numbers a downtrack can
// map back to the input ones, to answer NACKs: as many as a video cache holds.
const historyLen = videoCacheSize

// recoveryWait is how long a subscriber that lost packets in its own queue,
// or whose video resumes, waits for a keyframe before it asks for one.
const recoveryWait = 4 * time.Second

// DownTrack is one subscriber's copy of one published track. It implements
// webrtc.TrackLocal itself (rather than sharing a TrackLocalStaticRTP) so
// that it owns its SSRC, sequence numbers and timestamps. It holds only that
// rewriting state: its subscriber's send path does the sending, and only the
// send path's goroutine touches the rewriting state.
type DownTrack struct {
	fwd   *Forwarder
	path  *sendPath
	ready *atomic.Bool              // the subscriber's transport is up; writes before are lost
	codec webrtc.RTPCodecCapability // the publisher's codec

	dropped atomic.Bool // packets for this downtrack were dropped before the rewrite
	closed  atomic.Bool

	mu     sync.Mutex
	writer webrtc.TrackLocalWriter // nil until bound
	ssrc   uint32
	pt     uint8
	ext    extIDs // the subscriber's ids for the extensions the SFU writes

	sender     *webrtc.RTPSender
	quality    *QualityScorer // the subscriber's (quality.go); may be nil
	subscriber string         // the subscriber's participant id

	// Allocation (allocator.go): alloc and allocSize belong to the room's
	// allocation loop; paused is read on every packet.
	alloc     alloc
	allocSize renderSize
	paused    atomic.Bool

	// Rewriting state; only the send path's goroutine touches it.
	started  bool
	waitKey  bool   // drop video until a keyframe
	resync   bool   // the next packet starts a new run after a gap
	runStart uint16 // input sequence number that started the current run
	// resendFloor is the output sequence number of the newest run that
	// restarted at a keyframe after a resume or a local loss: the
	// subscriber's decoder has moved past what came before (a receiver
	// drops its NACKs older than a keyframe), so older packets are not
	// resent. A layer switch and padding's runs do not move it: a switch
	// keeps the old layer's packets repairable as first sent, and the
	// frame before a probe may still need repair.
	resendFloor uint16
	fenced      bool      // resendFloor is set
	seqOffset   uint16    // input seq - output seq
	tsOffset    uint32    // input ts - output ts
	lastOut     uint16    // highest output seq sent
	lastIn      uint16    // highest input seq seen
	frameEnd    bool      // the newest packet sent ended a frame: padding may follow
	lastAsk     time.Time // last keyframe request while waiting for one
	skipped     bool      // packets were discarded while waiting for a keyframe
	maxSkipped  uint16    // the newest of them
	hdr         rtp.Header
	extBuf      [5]byte             // abs-send-time and transport-wide sequence payloads
	history     [historyLen]seqPair // output -> input sequence numbers, for NACKs
	sent        atomic.Uint64

	// Simulcast (simulcast.go). cur is the layer being forwarded (-1:
	// none yet), target the one to switch to at its next keyframe, max
	// the highest the allocator allows; ingest reads them, so atomics.
	cur, target, max atomic.Int32
	// retargetMu makes each retarget's read of max and the layers and its
	// store of target one step: two at once (the allocator's new cap, a
	// layer arriving) could otherwise store the older answer last.
	retargetMu sync.Mutex
	switches   atomic.Uint64
	skipLayer  int8   // the layer skipped/maxSkipped refer to
	lastOutTS  uint32 // output timestamp of the newest packet sent
	lastOutAt  int64  // when it was sent (unix nanos)
	vp8        bool   // rewrite VP8 picture ids across switches
	picOff     uint16 // input - output picture id
	tl0Off     uint8  // input - output TL0PICIDX
	lastPic    uint16 // newest output picture id
	lastTL0    uint8
	sawPic     bool
	catching   bool        // inside catchUp: no nested catch-up
	askNow     atomic.Bool // a new wait for a keyframe: ask at once
	recovering bool        // the wait is a recovery (own loss, resume), not a switch
	waitSince  time.Time
}

// seqPair remembers which input packet an output sequence number carried,
// and how it was rewritten, so a retransmission is rewritten the same way
// even after a layer switch.
type seqPair struct {
	out, in uint16
	picOff  uint16
	tsOff   uint32
	tl0Off  uint8
	layer   int8
	valid   bool
	resends uint8 // retransmissions so far (resendable)
	resent  int64 // the last one, unix nanos
}

func newDownTrack(f *Forwarder, path *sendPath, ready *atomic.Bool) *DownTrack {
	d := &DownTrack{
		fwd:     f,
		path:    path,
		ready:   ready,
		codec:   f.codec,
		waitKey: f.kind == webrtc.RTPCodecTypeVideo,
		vp8:     strings.EqualFold(f.codec.MimeType, webrtc.MimeTypeVP8),
	}
	d.cur.Store(-1)
	d.max.Store(maxLayers - 1)
	d.retarget()
	return d
}

// accepts reports whether packets of a layer matter to this downtrack: the
// one it forwards and the one it waits to switch to. Called on every packet.
func (d *DownTrack) accepts(layer int8) bool {
	if d.paused.Load() {
		return false
	}
	return int32(layer) == d.target.Load() || int32(layer) == d.cur.Load()
}

// SetMaxLayer caps the spatial layer this subscriber gets (0: lowest). The
// switch happens at the next keyframe of the new layer, which is asked for.
func (d *DownTrack) SetMaxLayer(max int8) {
	d.max.Store(int32(max))
	d.retarget()
}

// retarget picks the layer to forward from the cap and the layers present.
func (d *DownTrack) retarget() {
	d.retargetMu.Lock()
	defer d.retargetMu.Unlock()
	t := d.fwd.pickLayer(int8(d.max.Load()))
	// The switch waits for the new layer's next packet, which starts it
	// from the cache or asks for a keyframe (startAt).
	if d.target.Swap(int32(t)) != int32(t) {
		d.askNow.Store(true)
	}
}

// CurrentLayer is the spatial layer being forwarded, -1 before the first.
func (d *DownTrack) CurrentLayer() int { return int(d.cur.Load()) }

// requestKeyframe asks for a keyframe of the layer this subscriber needs one
// of: the one it switches to, or the one it gets.
func (d *DownTrack) requestKeyframe(why keyframeReason) {
	d.fwd.requestKeyframe(d.fwd.layer(int8(d.target.Load())), why)
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
	d.ext = extIDsOf(t.HeaderExtensions())
	d.mu.Unlock()
	d.path.bind(uint32(t.SSRC()), d)
	d.requestKeyframe(kfStart)
	return c, nil
}

// Unbind stops sending.
func (d *DownTrack) Unbind(t webrtc.TrackLocalContext) error {
	d.mu.Lock()
	d.writer = nil
	d.mu.Unlock()
	d.path.unbind(uint32(t.SSRC()), d)
	return nil
}

func (d *DownTrack) video() bool { return d.fwd.kind == webrtc.RTPCodecTypeVideo }

// send rewrites one packet into this subscriber's sequence and timestamp
// space and writes it. Output sequence numbers have no holes except where
// the publisher's packets were lost, so the subscriber's NACKs stay
// meaningful. A switch of simulcast layer happens only at a keyframe of the
// new layer; until it comes the old layer keeps flowing, so the picture
// never freezes on a switch.
func (d *DownTrack) send(p *packet, layer int8) bool {
	d.mu.Lock()
	w, ssrc, pt, ext := d.writer, d.ssrc, d.pt, d.ext
	d.mu.Unlock()
	if w == nil || !d.ready.Load() {
		// Not negotiated or not connected yet: anything written now would be
		// lost, so a keyframe sent now would never arrive.
		return false
	}
	if d.dropped.Swap(false) {
		// Packets were lost here, not upstream: start a new run, at a
		// keyframe for video, with no gap in the numbers the subscriber sees.
		d.resync = true
		if d.video() {
			d.waitKey = true // from the cache if it can, else asked for (startAt)
			d.recovering, d.waitSince = true, time.Now()
		}
	}
	cur, target := int8(d.cur.Load()), int8(d.target.Load())
	in := p.header.SequenceNumber
	if layer == target && (cur != target || d.waitKey) {
		floor, restart := d.lastOut+1, d.started && d.waitKey
		if !d.startAt(p, layer) {
			return false
		}
		if restart {
			d.resendFloor, d.fenced = floor, true
		}
	} else if layer != cur || d.waitKey {
		return false
	}
	if d.resync {
		d.resync = false
		d.runStart = in
		d.seqOffset = in - (d.lastOut + 1)
		d.lastIn = in - 1
	}
	if int16(in-d.runStart) < 0 {
		return false // older than the current run: its place in our numbering is gone
	}
	if len(p.payload) == 0 {
		// Padding only (bandwidth probes): skip it without using up an
		// output sequence number when it arrives in order.
		if in == d.lastIn+1 {
			d.seqOffset++
			d.lastIn = in
		}
		return false
	}
	if int16(in-d.lastIn) > 0 {
		d.lastIn = in
	}
	// Keep the run's start within reach of int16 comparisons: after 32768
	// packets every newer one would look older than the start and be
	// dropped. Anything this far behind the newest is stale anyway.
	if d.lastIn-d.runStart > 1<<14 {
		d.runStart = d.lastIn - 1<<14
	}
	out := in - d.seqOffset
	if int16(out-d.lastOut) > 0 {
		d.lastOut = out
		d.lastOutTS = p.header.Timestamp - d.tsOffset
		d.lastOutAt = d.clock()
		d.frameEnd = p.header.Marker
	}
	h := seqPair{out: out, in: in, layer: layer, tsOff: d.tsOffset, valid: true}
	if d.vp8 && d.fwd.base != nil && d.fwd.Layers() > 1 {
		h.picOff, h.tl0Off = d.picOff, d.tl0Off
		d.rewriteVP8(p.payload, h.picOff, h.tl0Off, true)
	}
	d.history[out%historyLen] = h
	return d.write(p, out, w, ssrc, pt, ext, h.tsOff, 0)
}

// startAt decides whether p, a packet of the layer this downtrack waits
// for, starts the run: it must be a keyframe that is not older than packets
// already skipped while waiting (a keyframe repaired by NACK upstream cannot
// start a run: the frames after it would reference discarded ones). On a
// start it rebases sequence numbers, timestamps and picture ids so that the
// subscriber sees one continuous stream.
func (d *DownTrack) startAt(p *packet, layer int8) bool {
	in := p.header.SequenceNumber
	if d.skipLayer != layer {
		d.skipLayer, d.skipped = layer, false
	}
	stale := d.skipped && int16(in-d.maxSkipped) < 0
	if !p.keyframe && d.video() && d.catchUp(d.fwd.layer(layer), in) {
		return true
	}
	if (!p.keyframe && d.video()) || stale {
		if !d.skipped || int16(in-d.maxSkipped) > 0 {
			d.skipped, d.maxSkipped = true, in
		}
		// Ask at once for a switch or a start, then again every second in
		// case a request was lost. A subscriber recovering from its own
		// loss or a pause first waits recoveryWait for a keyframe someone
		// else asked for: a bad link must not cost every other subscriber
		// keyframes. The forwarder throttles requests for all together.
		now := time.Now()
		due := stale || d.askNow.Swap(false) || now.Sub(d.lastAsk) > time.Second
		if d.recovering && now.Sub(d.waitSince) < recoveryWait {
			due = false
		}
		if due {
			d.lastAsk = now
			why := kfSwitch
			switch {
			case d.recovering || stale:
				why = kfRecovery
			case !d.started:
				why = kfStart
			}
			d.fwd.requestKeyframe(d.fwd.layer(layer), why)
		}
		return false
	}
	d.waitKey, d.skipped, d.recovering = false, false, false
	switched := d.started && int8(d.cur.Load()) != layer
	d.cur.Store(int32(layer))
	if !d.started {
		d.started = true
		d.runStart = in
		d.seqOffset = in - uint16(rand.Uint32())
		d.tsOffset = p.header.Timestamp - rand.Uint32()
		d.lastOut = in - d.seqOffset - 1
		d.lastIn = in - 1
		return true
	}
	d.resync = true
	if !switched {
		return true
	}
	d.switches.Add(1)
	d.path.switches.Add(1)
	// The new layer has its own timestamps: continue from the last sent
	// one, advanced by the time since it was sent (at least one tick).
	step := uint32((time.Now().UnixNano() - d.lastOutAt) * int64(d.codec.ClockRate) / 1e9)
	d.tsOffset = p.header.Timestamp - (d.lastOutTS + max(step, 1))
	if d.vp8 {
		if at, tl0, long := vp8Descriptor(p.payload); at >= 0 && d.sawPic {
			d.picOff = vp8PictureID(p.payload, at, long) - (d.lastPic + 1)
			if tl0 >= 0 {
				d.tl0Off = p.payload[tl0] - (d.lastTL0 + 1)
			}
		}
	}
	return true
}

// rewriteVP8 moves a VP8 packet's picture id and TL0PICIDX into this
// subscriber's numbering (the payload is the send path's own copy), and
// remembers the newest it sent, from which the next switch continues.
func (d *DownTrack) rewriteVP8(payload []byte, picOff uint16, tl0Off uint8, track bool) {
	at, tl0, long := vp8Descriptor(payload)
	if at < 0 {
		return
	}
	mask := uint16(0x7f)
	if long {
		mask = 0x7fff
	}
	pic := (vp8PictureID(payload, at, long) - picOff) & mask
	putVP8PictureID(payload, at, long, pic)
	var t uint8
	if tl0 >= 0 {
		t = payload[tl0] - tl0Off
		payload[tl0] = t
	}
	if !track {
		return
	}
	if !d.sawPic || int16((pic-d.lastPic)<<1) > 0 { // compare within 15 bits
		d.lastPic, d.sawPic = pic, true
		if tl0 >= 0 {
			d.lastTL0 = t
		}
	}
}

// Retransmission bounds: a packet is resent at most maxResends times and
// not again within resendGap, and a paused video's packets not at all (it
// restarts at a keyframe). Without them a congested link loses the
// retransmissions too, the subscriber asks again every few tens of
// milliseconds, and the retransmissions crowd out the media (and, on a
// shaped link, everything else).
const (
	maxResends = 2
	resendGap  = 100 * time.Millisecond
)

// resendable maps a NACKed output sequence number to its input packet when
// it may be resent now, and counts the resend.
func (d *DownTrack) resendable(out uint16, now time.Time) (seqPair, bool) {
	e := &d.history[out%historyLen]
	if !e.valid || e.out != out || d.paused.Load() || e.resends >= maxResends {
		return seqPair{}, false
	}
	if d.fenced && int16(out-d.resendFloor) < 0 {
		return seqPair{}, false // from before the keyframe the current run started at
	}
	if e.resends > 0 && now.UnixNano()-e.resent < int64(resendGap) {
		return seqPair{}, false
	}
	e.resends++
	e.resent = now.UnixNano()
	return *e, true
}

// resend writes a packet again under the output sequence number it had.
func (d *DownTrack) resend(p *packet, out uint16, h seqPair) bool {
	d.mu.Lock()
	w, ssrc, pt, ext := d.writer, d.ssrc, d.pt, d.ext
	d.mu.Unlock()
	if w == nil || !d.ready.Load() || len(p.payload) == 0 {
		return false
	}
	if d.vp8 && (h.picOff != 0 || h.tl0Off != 0) {
		d.rewriteVP8(p.payload, h.picOff, h.tl0Off, false)
	}
	return d.write(p, out, w, ssrc, pt, ext, h.tsOff, 0)
}

// sendPadding writes one padding-only packet (a bandwidth probe, probe.go)
// in this downtrack's sequence: the next output sequence number, the
// newest output timestamp, no marker. Only between frames (a padding packet
// inside a frame's run of sequence numbers would break the frame for the
// receiver) and only once the downtrack has started. The media that follows
// starts a new run after it, so the numbers stay continuous; a NACK for it
// is not answered (receivers need no padding to assemble frames).
func (d *DownTrack) sendPadding() bool {
	d.mu.Lock()
	w, ssrc, pt, ext := d.writer, d.ssrc, d.pt, d.ext
	d.mu.Unlock()
	if w == nil || !d.ready.Load() || !d.started || ext.twcc == 0 {
		return false
	}
	if !d.frameEnd && !d.waitKey && !d.paused.Load() {
		return false // mid-frame; a paused or waiting video restarts at a keyframe anyway
	}
	out := d.lastOut + 1
	d.lastOut = out
	d.resync = true
	d.history[out%historyLen] = seqPair{}
	p := &d.path.padPkt
	p.header = rtp.Header{Timestamp: d.lastOutTS}
	p.payload = p.payload[:0]
	if !d.write(p, out, w, ssrc, pt, ext, 0, probePad) {
		return false
	}
	d.path.probe.padPackets.Add(1)
	d.path.probe.padBytes.Add(probePad)
	return true
}

// write rewrites the header into this downtrack's own (the cached packet
// stays untouched and nothing is allocated) and writes the packet.
// pad > 0 makes it a padding-only packet of that many bytes (p has no payload).
func (d *DownTrack) write(p *packet, out uint16, w webrtc.TrackLocalWriter, ssrc uint32, pt uint8, ext extIDs, tsOff uint32, pad byte) bool {
	h := &d.hdr
	*h = rtp.Header{
		Version:        2,
		Padding:        pad > 0,
		PaddingSize:    pad,
		Marker:         p.header.Marker,
		PayloadType:    pt,
		SequenceNumber: out,
		Timestamp:      p.header.Timestamp - tsOff,
		SSRC:           ssrc,
		CSRC:           p.header.CSRC,
		Extensions:     h.Extensions[:0],
	}
	// Extension ids are per PeerConnection: carry the audio level under
	// the subscriber's id, and write the send time and the transport-wide
	// sequence of this PeerConnection where the subscriber negotiated them.
	if in := d.fwd.ext.audioLevel; ext.audioLevel != 0 && in != 0 {
		if v := p.header.GetExtension(in); len(v) > 0 {
			_ = h.SetExtension(ext.audioLevel, v)
		}
	}
	if ext.absSendTime != 0 {
		ns := d.clock()
		v := uint32(ns/1e9)<<18 | uint32((ns%1e9)<<18/1e9)
		d.extBuf[0], d.extBuf[1], d.extBuf[2] = byte(v>>16), byte(v>>8), byte(v)
		_ = h.SetExtension(ext.absSendTime, d.extBuf[0:3])
	}
	var twcc uint16
	if ext.twcc != 0 && d.path != nil {
		twcc = d.path.nextTWCC()
		d.extBuf[3], d.extBuf[4] = byte(twcc>>8), byte(twcc)
		_ = h.SetExtension(ext.twcc, d.extBuf[3:5])
		if pr := d.path.probe; pr != nil && pr.active.Load() {
			pr.sent(twcc, h.MarshalSize()+len(p.payload)+int(pad), time.Unix(0, d.clock()))
		}
	}
	if _, err := w.WriteRTP(h, p.payload); err != nil {
		return false // the PeerConnection is closing; the room removes us shortly
	}
	if ext.twcc != 0 && d.path != nil {
		d.path.est.sent(twcc, h.MarshalSize()+len(p.payload)+int(pad)) // estimate.go: a probe's padding counts
	}
	if pad > 0 {
		return true // padding is not media: counted by the prober
	}
	d.sent.Add(1)
	return true
}

// clock is the time of the send path's current batch: its packets leave
// together (one GSO send), and one clock read per batch instead of two per
// packet is measurable at this rate. Outside a batch (tests), the time now.
func (d *DownTrack) clock() int64 {
	if d.path != nil && d.path.now != 0 {
		return d.path.now
	}
	return time.Now().UnixNano()
}

// close stops this downtrack; the sender is removed by the caller.
func (d *DownTrack) close() {
	d.closed.Store(true)
	d.fwd.removeDownTrack(d)
	d.mu.Lock()
	ssrc := d.ssrc
	d.mu.Unlock()
	d.path.unbind(ssrc, d)
}
