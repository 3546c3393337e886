package datachannel

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/collab/session"
	"github.com/huddle-rtc/huddle/internal/ratelog"
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

// outItem is one queued message. Items of a flow (a document stream) are
// ops and acks: they may be dropped as a whole flow when the queue
// overflows (the client reopens and catches up). All other items are
// answers, errors and notices, which are never dropped. A streamed item
// (stream != nil) is produced frame by frame as it is sent; it counts as
// one frame in the queue.
type outItem struct {
	data   []byte
	flow   session.Flow
	stream session.Stream
}

func (it outItem) size(frameMax int) int {
	if it.stream != nil {
		return frameMax
	}
	return len(it.data)
}

// sender is a participant's collab channel writer: a queue bounded by bytes
// and one goroutine that moves messages into the channel only while its
// buffered amount is under the high-water mark. Pion's Send never blocks
// and buffers without limit, so this is what bounds server memory for a
// peer that reads slowly or not at all.
type sender struct {
	ch  Channel
	hub *Hub
	log *ratelog.Log

	maxBytes int    // whole queue, control messages included
	opBytes  int    // ops may fill the queue only up to here
	high     uint64 // stop handing frames to the channel above this
	frameMax int

	mu      sync.Mutex
	q       []outItem
	bytes   int // queued, plus the message being sent
	closed  bool
	dropped map[session.Flow]bool // flows whose ops were dropped

	wake chan struct{}
	low  chan struct{}
	open chan struct{}

	onOverflow func() // a control message did not fit: the peer is cut off
}

func newSender(h *Hub, ch Channel, log *ratelog.Log, onOverflow func()) *sender {
	s := &sender{
		ch: ch, hub: h, log: log,
		maxBytes:   h.cfg.QueueBytes,
		opBytes:    h.cfg.QueueBytes - h.cfg.QueueBytes/8,
		high:       uint64(h.cfg.HighWater),
		frameMax:   h.cfg.FrameSize,
		dropped:    map[session.Flow]bool{},
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

// Send queues a message that must not be lost. To make room it drops
// queued document ops (their flows get lagging); if the queue still has
// no room, the peer is too far behind and is cut off. A single message
// larger than the whole queue is accepted when nothing else is queued (it
// is bounded by the protocol's message limit).
func (s *sender) Send(data []byte) bool {
	return s.pushControl(outItem{data: data})
}

// SendStream queues a message that is produced as it is sent.
func (s *sender) SendStream(r session.Stream) bool {
	return s.pushControl(outItem{stream: r})
}

func (s *sender) pushControl(it outItem) bool {
	n := it.size(s.frameMax)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	var evicted []session.Flow
	if s.bytes+n > s.maxBytes {
		evicted = s.evictLocked(nil)
	}
	ok := s.bytes+n <= s.maxBytes || s.bytes == 0
	if ok {
		s.q = append(s.q, it)
		s.addLocked(n)
	}
	s.mu.Unlock()
	for _, f := range evicted {
		f.Drop()
	}
	if ok {
		signal(s.wake)
		return true
	}
	s.log.Warn("collab queue overflow: peer does not read its answers; closing its data channels", "queued", s.queued(), "message", n)
	s.onOverflow()
	return false
}

// SendOp queues a document op or ack of flow f. When it does not fit,
// f's queued ops are dropped, a lagging notice takes their place and
// SendOp reports false: f's subscription must end.
func (s *sender) SendOp(f session.Flow, data []byte) bool {
	s.mu.Lock()
	if s.closed || s.dropped[f] {
		s.mu.Unlock()
		return false
	}
	if s.bytes+len(data) <= s.opBytes {
		s.q = append(s.q, outItem{data: data, flow: f})
		s.addLocked(len(data))
		s.mu.Unlock()
		signal(s.wake)
		return true
	}
	s.evictLocked(f)
	s.mu.Unlock()
	signal(s.wake)
	return false
}

// Lag drops f's queued ops and queues its lagging notice (the service
// ended f's subscription because it fell behind).
func (s *sender) Lag(f session.Flow) {
	s.mu.Lock()
	if !s.closed && !s.dropped[f] {
		s.evictLocked(f)
	}
	s.mu.Unlock()
	signal(s.wake)
}

// Forget releases the bookkeeping of a flow that has ended.
func (s *sender) Forget(f session.Flow) {
	s.mu.Lock()
	delete(s.dropped, f)
	s.mu.Unlock()
}

// evictLocked removes the queued ops of only (or of every flow when only
// is nil), marks them dropped and queues one lagging notice for each.
// Lagging notices are tiny and at most one per flow, so they are queued
// even past the limit (the op limit leaves room for them).
func (s *sender) evictLocked(only session.Flow) []session.Flow {
	var evicted []session.Flow
	kept := s.q[:0]
	freed := 0
	seen := map[session.Flow]bool{}
	for _, it := range s.q {
		if it.flow != nil && (only == nil || it.flow == only) {
			freed += len(it.data)
			if !seen[it.flow] {
				seen[it.flow] = true
				evicted = append(evicted, it.flow)
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
	for _, f := range evicted {
		s.dropped[f] = true
		msg := f.LagNotice()
		s.q = append(s.q, outItem{data: msg})
		s.addLocked(len(msg))
		s.hub.metricLagging.Add(1)
	}
	if len(evicted) > 0 {
		s.log.Info("peer lags behind: dropped queued document ops", "docs", len(evicted), "queued", s.bytes)
	}
	return evicted
}

func (s *sender) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// pop waits for the next message.
func (s *sender) pop(ctx context.Context) (outItem, bool) {
	for {
		s.mu.Lock()
		if len(s.q) > 0 && !s.closed {
			it := s.q[0]
			s.q[0] = outItem{}
			s.q = s.q[1:]
			s.mu.Unlock()
			return it, true
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return outItem{}, false
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
	put := func(f []byte) error {
		for s.ch.BufferedAmount() >= s.high {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.low:
			case <-poll.C:
			}
		}
		return s.ch.SendText(string(f))
	}
	for {
		it, ok := s.pop(ctx)
		if !ok {
			return
		}
		var err error
		if it.stream != nil {
			err = s.writeStream(it.stream, nextID, put)
			nextID++
		} else {
			frames := protocol.SplitFrames(it.data, nextID, s.frameMax)
			if len(frames) > 1 {
				nextID++
			}
			for _, f := range frames {
				if err = put(f); err != nil {
					break
				}
			}
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Info("collab send failed", "err", err)
			}
			return
		}
		s.mu.Lock()
		s.addLocked(-it.size(s.frameMax))
		s.mu.Unlock()
	}
}

// writeStream sends a streamed message in chunk frames (or whole, when it
// turns out to fit one frame), reading only what the next frame needs.
func (s *sender) writeStream(r session.Stream, id uint64, put func([]byte) error) error {
	buf := make([]byte, s.frameMax)
	var pending []byte
	eof := false
	for i := 0; ; i++ {
		header := "#" + strconv.FormatUint(id, 10) + ":" + strconv.Itoa(i) + ":"
		room := s.frameMax - len(header) - 2
		for !eof && len(pending) <= room {
			n, err := r.Read(buf)
			pending = append(pending, buf[:n]...)
			switch {
			case errors.Is(err, io.EOF):
				eof = true
			case err != nil:
				return err
			}
		}
		if i == 0 && eof && len(pending) <= s.frameMax {
			return put(pending)
		}
		n := min(room, len(pending))
		for n < len(pending) && n > 0 && !utf8.RuneStart(pending[n]) {
			n-- // never split a code point
		}
		last := eof && n == len(pending)
		f := make([]byte, 0, len(header)+2+n)
		f = append(f, header...)
		if last {
			f = append(f, "1:"...)
		} else {
			f = append(f, "0:"...)
		}
		f = append(f, pending[:n]...)
		if err := put(f); err != nil {
			return err
		}
		if last {
			return nil
		}
		pending = append(pending[:0], pending[n:]...)
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

// Retire drops f's queued ops without a lagging notice: the client closed
// or reopened the document, so nothing more of this flow may go out.
func (s *sender) Retire(f session.Flow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.q[:0]
	freed := 0
	for _, it := range s.q {
		if it.flow == f {
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
	s.dropped[f] = true
}
