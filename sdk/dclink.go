package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Send-side backpressure on a data channel: Pion's Send never blocks and
// buffers without limit, so a sender waits while more than sendHighWater
// bytes are queued, until OnBufferedAmountLow says the queue fell under
// sendLowWater.
const (
	sendHighWater = 1 << 20
	sendLowWater  = 256 << 10
)

// ErrDisconnected is returned by document requests whose data channel went
// away before the answer came. Edits are not lost: they are resubmitted
// after the reconnect.
var ErrDisconnected = errors.New("documents: data channel disconnected")

// ErrCutOff is returned by document calls after the server closed the
// documents channel of a connected room (for example because the client
// did not read its answers). Leave and join again to use documents.
var ErrCutOff = fmt.Errorf("%w: closed by the server", ErrDisconnected)

// msgLink sends whole protocol messages on one channel.
type msgLink interface {
	send(ctx context.Context, msg []byte) error
	// trySend sends only if it can do so without waiting (lossy channels).
	trySend(msg []byte) bool
}

// dcLink is a msgLink over a Pion data channel: chunk framing for large
// messages, reassembly of incoming ones, and bounded buffering.
type dcLink struct {
	dc *webrtc.DataChannel

	mu     sync.Mutex // serialises messages: chunks of one message go back to back
	nextID uint64

	low       chan struct{}
	closed    chan struct{}
	closeOnce sync.Once

	reasm protocol.Reassembler // touched only by Pion's read goroutine for dc
}

// newDCLink wraps dc. onMsg gets every reassembled message, on the
// channel's read goroutine, in order; onClose runs once when it closes.
func newDCLink(dc *webrtc.DataChannel, onOpen func(), onMsg func([]byte), onBadFrame func(error), onClose func()) *dcLink {
	l := &dcLink{dc: dc, low: make(chan struct{}, 1), closed: make(chan struct{})}
	dc.SetBufferedAmountLowThreshold(sendLowWater)
	dc.OnBufferedAmountLow(func() {
		select {
		case l.low <- struct{}{}:
		default:
		}
	})
	dc.OnOpen(onOpen)
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		msg, err := l.reasm.Add(m.Data)
		if err != nil {
			onBadFrame(err)
			return
		}
		if msg != nil {
			onMsg(msg)
		}
	})
	dc.OnClose(func() {
		l.markClosed()
		onClose()
	})
	return l
}

func (l *dcLink) markClosed() { l.closeOnce.Do(func() { close(l.closed) }) }

func (l *dcLink) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// send writes msg, chunked if needed. It waits (bounded by ctx) while the
// channel's buffer is full; once the first chunk of a message is out, the
// rest follow even if ctx ends, because a half-sent chunked message would
// spoil the receiver's reassembly of the next one.
func (l *dcLink) send(ctx context.Context, msg []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed() {
		return ErrDisconnected
	}
	id := l.nextID
	l.nextID++
	frames := protocol.SplitFrames(msg, id, 0)
	for i, f := range frames {
		wctx := ctx
		if i > 0 {
			wctx = context.Background()
		}
		if err := l.waitRoom(wctx); err != nil {
			return err
		}
		if err := l.dc.SendText(string(f)); err != nil {
			if l.isClosed() || l.dc.ReadyState() != webrtc.DataChannelStateOpen {
				return ErrDisconnected
			}
			return err
		}
	}
	return nil
}

func (l *dcLink) trySend(msg []byte) bool {
	if !l.mu.TryLock() {
		return false
	}
	defer l.mu.Unlock()
	if l.isClosed() || l.dc.ReadyState() != webrtc.DataChannelStateOpen || l.dc.BufferedAmount() > sendLowWater || len(msg) > protocol.MaxFrame {
		return false
	}
	l.nextID++
	return l.dc.SendText(string(msg)) == nil
}

// waitRoom returns once the channel's send buffer is under the high-water
// mark. OnBufferedAmountLow wakes it; a slow poll covers a wake-up that
// raced with the check.
func (l *dcLink) waitRoom(ctx context.Context) error {
	for l.dc.BufferedAmount() > sendHighWater {
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-l.low:
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return ErrDisconnected
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
	return nil
}
