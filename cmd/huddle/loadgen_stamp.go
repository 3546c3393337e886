package main

import (
	"encoding/binary"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// Every packet the bots publish carries a stamp at stampAt bytes into its
// payload (past the VP8 descriptor for video): a magic word, the frame's
// time, then the packet's send time, in nanoseconds since the load began
// (loadgen.now). A video frame is stamped at the start of each of its
// fragments, so every packet but a short last one carries a stamp. The
// frame time decides the measuring window (all packets of a frame alike,
// so counts are exact); the send time is rewritten as the packet leaves
// the publisher's Pion stack for SRTP and the socket (sendStamper), so a
// packet's latency does not include the time its frame's earlier packets
// took to be sent.
const (
	stampAt    = 16
	stampLen   = 20
	stampMagic = 0x48424e43 // "HBNC"
	// vp8Fragment is what Pion's VP8 payloader puts in each packet of a
	// sample (1200-byte MTU, RTP header, 4-byte descriptor with a 15-bit
	// picture id), for plain and simulcast tracks alike: a frame of whole
	// fragments gives equal-sized packets, each starting a fragment where
	// its stamp is.
	vp8Fragment = 1200 - 12 - 4
)

// vp8Packets is how many packets Pion's VP8 payloader makes of a frame of
// n bytes.
func vp8Packets(n int) int64 { return int64(max(1, (n+vp8Fragment-1)/vp8Fragment)) }

func stamp(b []byte, ns int64) {
	binary.BigEndian.PutUint32(b[stampAt:], stampMagic)
	binary.BigEndian.PutUint64(b[stampAt+4:], uint64(ns))
	binary.BigEndian.PutUint64(b[stampAt+12:], uint64(ns))
}

// stampFrame stamps each fragment of a VP8 frame long enough to hold one
// (an Opus frame is one fragment).
func stampFrame(frame []byte, ns int64) {
	for off := 0; off+stampAt+stampLen <= len(frame); off += vp8Fragment {
		stamp(frame[off:], ns)
	}
}

// readStamp finds a received RTP packet's stamp: its frame time and send
// time.
func readStamp(p []byte, video bool) (frame, sent int64, ok bool) {
	off := rtpPayloadOffset(p)
	if off > len(p) {
		return 0, 0, false
	}
	if video {
		n, ok := vp8DescriptorLen(p[off:])
		if !ok {
			return 0, 0, false
		}
		off += n
	}
	if off+stampAt+stampLen > len(p) || binary.BigEndian.Uint32(p[off+stampAt:]) != stampMagic {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(p[off+stampAt+4:])), int64(binary.BigEndian.Uint64(p[off+stampAt+12:])), true
}

func rtpPayloadOffset(p []byte) int {
	off := 12 + 4*int(p[0]&0x0f)
	if p[0]&0x10 != 0 && len(p) >= off+4 {
		off += 4 + 4*int(binary.BigEndian.Uint16(p[off+2:]))
	}
	return off
}

// vp8DescriptorLen is the length of a VP8 payload's descriptor (RFC
// 7741 4.2), as Pion parses it; ok is false for a malformed one.
func vp8DescriptorLen(payload []byte) (n int, ok bool) {
	var vp8 codecs.VP8Packet
	if _, err := vp8.Unmarshal(payload); err != nil {
		return 0, false
	}
	return len(payload) - len(vp8.Payload), true
}

// sendStamper is a network interceptor of the bots (closest to the wire,
// under NACK and reports): it writes each stamped packet's send time as
// the packet goes to SRTP and the socket. With a pace (--pacing), a
// publisher's video first waits for its turn in a pacer, and is stamped
// when it leaves the pacer: the pacer's wait is the publisher's, as in a
// browser, not the server's.
type sendStamper struct {
	g    *loadgen
	pace time.Duration // one video packet's slot; 0: a frame leaves as one burst
}

func (s sendStamper) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &sendStampInterceptor{g: s.g, pace: s.pace}, nil
}

type sendStampInterceptor struct {
	interceptor.NoOp
	g    *loadgen
	pace time.Duration
}

func (i *sendStampInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	video := strings.HasPrefix(info.MimeType, "video/")
	var p *pacer
	if video && i.pace > 0 {
		p = &pacer{slot: i.pace}
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		off, ok := stampAt, true
		if video {
			var n int
			n, ok = vp8DescriptorLen(payload)
			off += n
		}
		stamped := ok && off+stampLen <= len(payload) && binary.BigEndian.Uint32(payload[off:]) == stampMagic
		if p != nil {
			p.wait()
		}
		if stamped {
			binary.BigEndian.PutUint64(payload[off+12:], uint64(i.g.now()))
		}
		return w.Write(h, payload, a)
	})
}

// pacer spreads a publisher's video packets out in time, as a browser's
// pacer does, instead of writing a frame's packets back to back as Pion's
// sample writer does. libwebrtc's pacer sends at a multiple of the target
// rate (2.5 by default) and in bursts about 5 ms apart (its
// kDefaultMinPacketLimit); so does this one: every packet has a slot at
// the pacing rate, and the packets whose slots fall in the same 5 ms
// window leave together at its start. A 33-packet frame at 1000 packets/s
// and a factor of 2.5 leaves as bursts of 13, 12 and 8 packets at 0, 5
// and 10 ms.
type pacer struct {
	slot  time.Duration
	mu    sync.Mutex
	epoch time.Time // windows start here, every pacerWindow
	next  time.Time // the next packet's slot
}

const pacerWindow = 5 * time.Millisecond

func (p *pacer) wait() {
	now := time.Now()
	if d := p.reserve(now).Sub(now); d > 0 {
		time.Sleep(d)
	}
}

// reserve takes the next packet's slot and says when the packet may leave:
// the start of the 5 ms window its slot falls in.
func (p *pacer) reserve(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.epoch.IsZero() {
		p.epoch = now
	}
	if p.next.Before(now) {
		p.next = now // no credit for a pause: a frame's first packet leaves now
	}
	at := p.next
	p.next = p.next.Add(p.slot)
	return at.Add(-at.Sub(p.epoch) % pacerWindow)
}
