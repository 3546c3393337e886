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
// since the last take.
func (b *lossBook) take(fence uint32, now time.Time) (received, lost int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for n < len(b.missing) && now.Sub(b.missing[n].at) >= lossSettle {
		b.settle(b.missing[n].seq, fence)
		n++
	}
	b.missing = append(b.missing[:0], b.missing[n:]...)
	received, lost = b.received, b.lost
	b.received, b.lost = 0, 0
	return received, lost
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
