package main

import (
	"encoding/binary"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
)

// A subscriber bot's latency is taken where Pion's SRTP session hands a
// decrypted packet over to the track's buffer, not where the bot's read
// loop gets it: the read loop waits for the bot's goroutine to get a CPU
// and for Pion's interceptors, which is the measuring bot's delay, not
// the server's. arrivals records that moment per received SSRC and
// sequence number; the read loop looks it up.
type arrivals struct {
	l      *load
	mu     sync.Mutex
	bySSRC map[uint32]*arrivalBuffer
}

// arrivalSlots is how many recent packets of one stream keep their
// arrival time: far more than a read loop lags behind.
const arrivalSlots = 4096

// srtpBufferLimit is the limit Pion puts on its own receive buffers.
const srtpBufferLimit = 1000 * 1000

// arrivalBuffer is Pion's receive buffer for one SSRC (what Pion's SRTP
// session makes by itself when there is no BufferFactory) with, for RTP,
// a note of when each packet was written into it.
type arrivalBuffer struct {
	buf *packetio.Buffer
	l   *load                       // nil: an RTCP buffer, not stamped
	at  [arrivalSlots]atomic.Uint64 // ns since the load began << 16 | sequence number
}

func newArrivals(l *load) *arrivals {
	return &arrivals{l: l, bySSRC: map[uint32]*arrivalBuffer{}}
}

// settings installs the stamping buffers in a bot's setting engine.
func (a *arrivals) settings(se *webrtc.SettingEngine) {
	se.BufferFactory = func(t packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
		b := packetio.NewBuffer()
		b.SetLimitSize(srtpBufferLimit)
		if t != packetio.RTPBufferPacket {
			return &arrivalBuffer{buf: b}
		}
		ab := &arrivalBuffer{buf: b, l: a.l}
		a.mu.Lock()
		a.bySSRC[ssrc] = ab
		a.mu.Unlock()
		return ab
	}
}

func (b *arrivalBuffer) Write(p []byte) (int, error) { return b.WriteWithAttributes(p, nil) }

func (b *arrivalBuffer) WriteWithAttributes(p []byte, attrs packetio.Attributes) (int, error) {
	if b.l != nil && len(p) >= 12 {
		seq := uint16(p[2])<<8 | uint16(p[3])
		b.at[seq%arrivalSlots].Store(uint64(b.l.now())<<16 | uint64(seq))
	}
	return b.buf.Write(p, attrs)
}

func (b *arrivalBuffer) Read(p []byte) (int, error) {
	n, _, err := b.buf.Read(p, nil)
	return n, err
}

func (b *arrivalBuffer) ReadWithAttributes(p []byte, attrs packetio.Attributes) (int, packetio.Attributes, error) {
	return b.buf.Read(p, attrs)
}

func (b *arrivalBuffer) Close() error { return b.buf.Close() }

// SetReadDeadline lets Pion's read deadlines reach the buffer.
func (b *arrivalBuffer) SetReadDeadline(t time.Time) error { return b.buf.SetReadDeadline(t) }

// stream is the buffer of one received SSRC, nil if none was made.
func (a *arrivals) stream(ssrc uint32) *arrivalBuffer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bySSRC[ssrc]
}

// arrived is when packet seq was handed over, and whether it is known.
func (b *arrivalBuffer) arrived(seq uint16) (int64, bool) {
	if b == nil {
		return 0, false
	}
	v := b.at[seq%arrivalSlots].Load()
	if uint16(v) != seq || v == 0 {
		return 0, false
	}
	return int64(v >> 16), true
}

// sendStamper is a network interceptor of the bots (closest to the wire,
// under NACK and reports): it writes each stamped packet's send time as
// the packet goes to SRTP and the socket. With a pace (--pacing), a
// publisher's video first waits for its turn in a pacer, and is stamped
// when it leaves the pacer: the pacer's wait is the publisher's, as in a
// browser, not the server's.
type sendStamper struct {
	l    *load
	pace time.Duration // one video packet's slot; 0: a frame leaves as one burst
}

func (s sendStamper) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &sendStampInterceptor{l: s.l, pace: s.pace}, nil
}

type sendStampInterceptor struct {
	interceptor.NoOp
	l    *load
	pace time.Duration
}

func (i *sendStampInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	video := strings.HasPrefix(info.MimeType, "video/")
	var p *pacer
	if video && i.pace > 0 {
		p = &pacer{slot: i.pace}
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		off := stampAt
		if video {
			off += vp8DescriptorLen(payload)
		}
		stamped := off+stampLen <= len(payload) && binary.BigEndian.Uint32(payload[off:]) == stampMagic
		if p != nil {
			p.wait()
		}
		if stamped {
			binary.BigEndian.PutUint64(payload[off+12:], uint64(i.l.now()))
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
