package datachannel

import (
	"context"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Channel is what the hub needs of a data channel. *webrtc.DataChannel
// implements it; tests may use a fake.
type Channel interface {
	Label() string
	ReadyState() webrtc.DataChannelState
	OnOpen(func())
	OnClose(func())
	OnMessage(func(webrtc.DataChannelMessage))
	SendText(string) error
	BufferedAmount() uint64
	SetBufferedAmountLowThreshold(uint64)
	OnBufferedAmountLow(func())
	Close() error
}

// outItem is one queued message. Items with a subscription (od != nil)
// are document ops and acks: they may be dropped as a whole subscription
// when the queue overflows (the client reopens and catches up). All other
// items are answers, errors and notices, which are never dropped.
type outItem struct {
	data []byte
	od   *openDoc
}

// sender is a participant's collab channel writer: a queue bounded by bytes
// and one goroutine that moves messages into the channel only while its
// buffered amount is under the high-water mark. Pion's Send never blocks
// and buffers without limit, so this is what bounds server memory for a
// peer that reads slowly or not at all.
type sender struct {
	ch  Channel
	hub *Hub
	log *rateLog

	maxBytes int    // whole queue, control messages included
	opBytes  int    // ops may fill the queue only up to here
	high     uint64 // stop handing frames to the channel above this
	frameMax int

	mu      sync.Mutex
	q       []outItem
	bytes   int // queued, plus the message being sent
	closed  bool
	dropped map[*openDoc]bool // subscriptions whose ops were dropped

	wake chan struct{}
	low  chan struct{}
	open chan struct{}

	onOverflow func() // a control message did not fit: the peer is cut off
}

func newSender(h *Hub, ch Channel, log *rateLog, onOverflow func()) *sender {
	s := &sender{
		ch: ch, hub: h, log: log,
		maxBytes:   h.cfg.QueueBytes,
		opBytes:    h.cfg.QueueBytes - h.cfg.QueueBytes/8,
		high:       uint64(h.cfg.HighWater),
		frameMax:   h.cfg.FrameSize,
		dropped:    map[*openDoc]bool{},
		wake:       make(chan struct{}, 1),
		low:        make(chan struct{}, 1),
		open:       make(chan struct{}),
		onOverflow: onOverflow,
	}
	ch.SetBufferedAmountLowThreshold(uint64(h.cfg.LowWater))
	ch.OnBufferedAmountLow(func() { signal(s.low) })
	var once sync.Once
	ch.OnOpen(func() { once.Do(func() { close(s.open) }) })
	if ch.ReadyState() == webrtc.DataChannelStateOpen {
		once.Do(func() { close(s.open) })
	}
	return s
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// add accounts n more queued bytes (under s.mu).
func (s *sender) addLocked(n int) {
	s.bytes += n
	s.hub.account(n, s.bytes)
}

// pushControl queues a message that must not be lost. To make room it
// drops queued document ops (their subscriptions get lagging); if the
// queue still has no room, the peer is too far behind and is cut off.
// A single message larger than the whole queue is accepted when nothing
// else is queued (it is bounded by the protocol's message limit).
func (s *sender) pushControl(data []byte) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	var evicted []*openDoc
	if s.bytes+len(data) > s.maxBytes {
		evicted = s.evictLocked(nil)
	}
	ok := s.bytes+len(data) <= s.maxBytes || s.bytes == 0
	if ok {
		s.q = append(s.q, outItem{data: data})
		s.addLocked(len(data))
	}
	s.mu.Unlock()
	for _, od := range evicted {
		od.drop()
	}
	if ok {
		signal(s.wake)
		return true
	}
	s.log.warn("collab queue overflow: peer does not read its answers; closing its data channels", "queued", s.queued(), "message", len(data))
	s.onOverflow()
	return false
}

// pushOp queues a document op or ack of subscription od. When it does not
// fit, od's queued ops are dropped, a lagging notice takes their place and
// pushOp reports false: od's subscription must end.
func (s *sender) pushOp(od *openDoc, data []byte) bool {
	s.mu.Lock()
	if s.closed || s.dropped[od] {
		s.mu.Unlock()
		return false
	}
	if s.bytes+len(data) <= s.opBytes {
		s.q = append(s.q, outItem{data: data, od: od})
		s.addLocked(len(data))
		s.mu.Unlock()
		signal(s.wake)
		return true
	}
	s.evictLocked(od)
	s.mu.Unlock()
	signal(s.wake)
	return false
}

// dropDoc drops od's queued ops and queues its lagging notice (the service
// ended od's subscription because it fell behind).
func (s *sender) dropDoc(od *openDoc) {
	s.mu.Lock()
	if !s.closed && !s.dropped[od] {
		s.evictLocked(od)
	}
	s.mu.Unlock()
	signal(s.wake)
}

// forget releases the bookkeeping of a subscription that has ended.
func (s *sender) forget(od *openDoc) {
	s.mu.Lock()
	delete(s.dropped, od)
	s.mu.Unlock()
}

// evictLocked removes the queued ops of od (or of every subscription when
// od is nil), marks them dropped and queues one lagging notice for each.
// Lagging notices are tiny and at most one per subscription, so they are
// queued even past the limit (the op limit leaves room for them).
func (s *sender) evictLocked(only *openDoc) []*openDoc {
	var evicted []*openDoc
	kept := s.q[:0]
	freed := 0
	seen := map[*openDoc]bool{}
	for _, it := range s.q {
		if it.od != nil && (only == nil || it.od == only) {
			freed += len(it.data)
			if !seen[it.od] {
				seen[it.od] = true
				evicted = append(evicted, it.od)
			}
			continue
		}
		kept = append(kept, it)
	}
	for i := len(kept); i < len(s.q); i++ {
		s.q[i] = outItem{}
	}
	s.q = kept
	s.addLocked(-freed)
	if only != nil && !seen[only] {
		evicted = append(evicted, only)
	}
	for _, od := range evicted {
		s.dropped[od] = true
		msg := mustEncode(&protocol.DocRequest{Type: protocol.DocTypeLagging, Doc: od.id})
		s.q = append(s.q, outItem{data: msg})
		s.addLocked(len(msg))
		s.hub.metricLagging.Add(1)
	}
	if len(evicted) > 0 {
		s.log.info("peer lags behind: dropped queued document ops", "docs", len(evicted), "queued", s.bytes)
	}
	return evicted
}

func (s *sender) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// pop waits for the next message.
func (s *sender) pop(ctx context.Context) ([]byte, bool) {
	for {
		s.mu.Lock()
		if len(s.q) > 0 && !s.closed {
			it := s.q[0]
			s.q[0] = outItem{}
			s.q = s.q[1:]
			s.mu.Unlock()
			return it.data, true
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false
		case <-s.wake:
		}
	}
}

// run is the writer goroutine.
func (s *sender) run(ctx context.Context) {
	defer s.shut()
	select {
	case <-s.open:
	case <-ctx.Done():
		return
	}
	var nextID uint64
	poll := time.NewTicker(250 * time.Millisecond) // in case a low-water event is ever missed
	defer poll.Stop()
	for {
		msg, ok := s.pop(ctx)
		if !ok {
			return
		}
		frames := protocol.SplitFrames(msg, nextID, s.frameMax)
		if len(frames) > 1 {
			nextID++
		}
		for _, f := range frames {
			for s.ch.BufferedAmount() >= s.high {
				select {
				case <-ctx.Done():
					return
				case <-s.low:
				case <-poll.C:
				}
			}
			if err := s.ch.SendText(string(f)); err != nil {
				s.log.info("collab send failed", "err", err)
				return
			}
		}
		s.mu.Lock()
		s.addLocked(-len(msg))
		s.mu.Unlock()
	}
}

// shut empties the queue for good.
func (s *sender) shut() {
	s.mu.Lock()
	s.closed = true
	s.addLocked(-s.bytes)
	s.q = nil
	s.mu.Unlock()
}

// retire drops od's queued ops without a lagging notice: the client closed
// or reopened the document, so nothing more of this subscription may go out.
func (s *sender) retire(od *openDoc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.q[:0]
	freed := 0
	for _, it := range s.q {
		if it.od == od {
			freed += len(it.data)
			continue
		}
		kept = append(kept, it)
	}
	for i := len(kept); i < len(s.q); i++ {
		s.q[i] = outItem{}
	}
	s.q = kept
	s.addLocked(-freed)
	// Remembered as dropped so that the forwarder stops; it is a pointer
	// key, gone with the map when the peer goes.
	s.dropped[od] = true
}
