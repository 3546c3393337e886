package main

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

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
	g      *loadgen
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
	g   *loadgen                    // nil: an RTCP buffer, not stamped
	at  [arrivalSlots]atomic.Uint64 // ns since the load began << 16 | sequence number
}

func newArrivals(g *loadgen) *arrivals {
	return &arrivals{g: g, bySSRC: map[uint32]*arrivalBuffer{}}
}

// settings installs the stamping buffers in a bot's setting engine.
func (a *arrivals) settings(se *webrtc.SettingEngine) {
	se.BufferFactory = func(t packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
		b := packetio.NewBuffer()
		b.SetLimitSize(srtpBufferLimit)
		if t != packetio.RTPBufferPacket {
			return &arrivalBuffer{buf: b}
		}
		ab := &arrivalBuffer{buf: b, g: a.g}
		a.mu.Lock()
		a.bySSRC[ssrc] = ab
		a.mu.Unlock()
		return ab
	}
}

func (b *arrivalBuffer) Write(p []byte) (int, error) { return b.WriteWithAttributes(p, nil) }

func (b *arrivalBuffer) WriteWithAttributes(p []byte, attrs packetio.Attributes) (int, error) {
	if b.g != nil && len(p) >= 12 {
		seq := uint16(p[2])<<8 | uint16(p[3])
		b.at[seq%arrivalSlots].Store(uint64(b.g.now())<<16 | uint64(seq))
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

// stream is the buffer of one received SSRC, nil if none was made (or
// the bot records no arrivals: a is nil).
func (a *arrivals) stream(ssrc uint32) *arrivalBuffer {
	if a == nil {
		return nil
	}
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
