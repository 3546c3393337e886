package sfu

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// A transport-wide feedback's "not received" is provisional: a receiver
// that reads each stream with its own goroutine (Pion's and our SDK's)
// records a stream's packets as its reader gets them, so when the receiver
// is short of CPU, the audio reader may record packets numbered after video
// packets still waiting in the video stream's buffer; a feedback built then
// says those video packets were not received. When they are recorded, the
// next feedback reports them again, received (pion/interceptor's twcc
// recorder, like libwebrtc's, rewinds to a late packet). Measured on a
// starved test process with an unlimited link: a third to a half of the
// packets reported lost were reported received later; counted
// as loss, they held an idle link "congested" and its subscriber on a low
// layer. So a packet counts as lost only once lossSettle has passed
// since it was first reported missing with no report of its arrival, and a
// packet reported received twice counts once.
const (
	// lossSettle is how long a reported loss waits for a late report of
	// the packet's arrival: the late reports measured came at most 222 ms
	// (median 106 ms) after the first. It delays the loss signal by about
	// two allocation rounds; delay-based over-use is not delayed.
	lossSettle = 400 * time.Millisecond
	// lossRing is how many packets' fate the book remembers, by transport-
	// wide sequence number: lossSettle of a 20 Mbit/s link in 1200-byte
	// packets is about 1000.
	lossRing = 2048
)

const (
	fateUnknown uint8 = iota
	fateReceived
	fateMissing // reported not received, not yet counted
	fateLost    // counted lost
)

type lossEntry struct {
	seq  uint16
	fate uint8
	size uint16 // bytes on the wire, as sent; 0: not known
}

type missingPacket struct {
	seq uint16
	at  time.Time // first reported missing
}

// lossBook counts the packets a subscriber's feedback reports received and
// lost, each packet once, a loss only once it has settled. The RTCP reader
// records; the allocation loop takes the counts.
type lossBook struct {
	mu       sync.Mutex
	fates    [lossRing]lossEntry // by sequence number modulo lossRing
	missing  []missingPacket     // reported missing, oldest first
	received int                 // since the last take
	lost     int
	// Of the packets received since the last take, those whose size is
	// known and their bytes: what the link delivered (acked.go).
	sized      int
	sizedBytes int
}

// sentRun notes the size of each packet of a run the send path flushed:
// n consecutive sequence numbers ending at last, bytes in all (a run's
// packets are of one frame, so near enough the same size each).
func (b *lossBook) sentRun(last uint16, n, bytes int) {
	if n <= 0 {
		return
	}
	size := uint16(min(bytes/n, maxPacketSize))
	b.mu.Lock()
	for i := range n {
		seq := last - uint16(n-1-i)
		b.fates[int(seq)%lossRing] = lossEntry{seq: seq, size: size}
	}
	b.mu.Unlock()
}

func (b *lossBook) entry(seq uint16) *lossEntry {
	e := &b.fates[int(seq)%lossRing]
	if e.seq != seq {
		*e = lossEntry{seq: seq}
	}
	return e
}

// record takes one feedback; packets before fence (1<<16 | a sequence
// number; 0: none) do not count.
func (b *lossBook) record(fb *rtcp.TransportLayerCC, fence uint32, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	eachTWCCStatus(fb, func(seq, sym uint16) {
		if beforeFence(seq, fence) {
			return
		}
		e := b.entry(seq)
		switch {
		case sym != rtcp.TypeTCCPacketNotReceived:
			if e.fate != fateReceived {
				b.received++ // a late one counted lost already stays counted
				if e.size > 0 {
					b.sized++
					b.sizedBytes += int(e.size)
				}
			}
			e.fate = fateReceived
		case e.fate == fateUnknown:
			e.fate = fateMissing
			if len(b.missing) >= lossRing {
				b.settle(b.missing[0].seq, fence) // bounded: the oldest counts now
				b.missing = b.missing[1:]
			}
			b.missing = append(b.missing, missingPacket{seq: seq, at: now})
		}
	})
}

// take returns what was received and what was lost (settled, past fence)
// since the last take, and the bytes received: those of the packets whose
// size is known, scaled to all received (a packet sent so long ago that
// the ring has forgotten its size counts at the others' mean).
func (b *lossBook) take(fence uint32, now time.Time) (received, lost, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for n < len(b.missing) && now.Sub(b.missing[n].at) >= lossSettle {
		b.settle(b.missing[n].seq, fence)
		n++
	}
	b.missing = append(b.missing[:0], b.missing[n:]...)
	received, lost = b.received, b.lost
	if b.sized > 0 {
		bytes = b.sizedBytes * received / b.sized
	}
	b.received, b.lost, b.sized, b.sizedBytes = 0, 0, 0, 0
	return received, lost, bytes
}

// settle counts a missing packet lost unless it was reported received
// since, or the fence passed it; b.mu is held.
func (b *lossBook) settle(seq uint16, fence uint32) {
	e := &b.fates[int(seq)%lossRing]
	if e.seq != seq || e.fate != fateMissing || beforeFence(seq, fence) {
		return
	}
	e.fate = fateLost
	b.lost++
}

// beforeFence reports whether seq was sent before the fence (1<<16 | the
// first sequence number whose loss counts; 0: none).
func beforeFence(seq uint16, fence uint32) bool {
	return fence != 0 && int16(seq-uint16(fence)) < 0
}
