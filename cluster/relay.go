package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Close codes this package decides. A code the other side chose (e.g. a
// WebSocket close code the owner passes on) is reported as it came.
const (
	CodeNodeGone     = 4001 // the other node left the membership or is not listening
	CodeGap          = 4002 // a relay message was lost (pub/sub does not redeliver)
	CodeOverflow     = 4003 // a queue on the way was full: the client should reconnect
	CodeRelayDown    = 4004 // Redis failed under the relay (publish error, reconnect)
	CodeRefused      = 4005 // the owner does not accept links (no Accept) or the open was bad
	CodeTooManyLinks = 4006 // the owner is at its link limit
	CodeUnknownLink  = 4007 // the other side does not know this link (it restarted)
	CodeNodeClosing  = 4008 // the node is shutting down
	CodeTooLarge     = 4009 // a frame over the limit arrived
	CodeOpenTimeout  = 4010 // the owner did not answer the open in time
)

func codeLabel(code int) string {
	switch code {
	case CodeNodeGone:
		return "node_gone"
	case CodeGap:
		return "gap"
	case CodeOverflow:
		return "overflow"
	case CodeRelayDown:
		return "relay_down"
	case CodeRefused:
		return "refused"
	case CodeTooManyLinks:
		return "too_many_links"
	case CodeUnknownLink:
		return "unknown_link"
	case CodeNodeClosing:
		return "node_closing"
	case CodeTooLarge:
		return "too_large"
	case CodeOpenTimeout:
		return "open_timeout"
	}
	return "closed" // a code chosen by a caller, on either side
}

var (
	ErrLinkClosed    = errors.New("cluster: relay link closed")
	ErrFrameTooLarge = errors.New("cluster: frame too large")
	ErrTooManyLinks  = errors.New("cluster: too many relay links")
	ErrOpenTimeout   = errors.New("cluster: relay open not answered")
	ErrNodeClosed    = errors.New("cluster: node closed")
)

// CloseError is why a Dial was refused: the owner's close code and reason.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("cluster: relay link closed: %d %s", e.Code, e.Reason)
}

// Overloaded reports whether the refusal was for load: a full queue or the
// link limit, not a move or a failure.
func (e *CloseError) Overloaded() bool { return overloadCode(e.Code) }

func overloadCode(code int) bool { return code == CodeOverflow || code == CodeTooManyLinks }

// Overloaded reports whether the link ended for load (a queue on the way
// was full, or the owner was at its link limit) rather than because the
// room moved or a node failed.
func (l *Link) Overloaded() bool {
	code, _ := l.CloseReason()
	return overloadCode(code)
}

// Link is one relayed client connection between an edge node (which
// dialed) and a room's owner (which accepted): ordered, both ways.
type Link struct {
	n      *Node
	id     uint64
	dialer bool
	peer   string
	room   string
	first  []byte
	in     chan []byte
	done   chan struct{}
	acked  chan struct{} // dialer: closed when the owner's ack arrives

	pending      atomic.Int64 // this link's messages waiting for the publisher
	pendingBytes atomic.Int64 // and their bytes
	peerInc      string       // the peer's incarnation when the link opened ("" if unknown)

	mu     sync.Mutex
	outSeq uint64
	inSeq  uint64
	closed bool
	gotAck bool
	code   int
	reason string
	// Sizes of the frames in `in`, oldest first, so that queued bytes are
	// known exactly: len(in) says how many the reader has not taken.
	sizes []int
	bytes int
}

// newLink is called with n.mu held.
func (n *Node) newLink(id uint64, dialer bool, peer, room string, first []byte) *Link {
	m, _ := n.memberLocked(peer)
	l := &Link{
		n: n, id: id, dialer: dialer, peer: peer, room: room, first: first, peerInc: m.Incarnation,
		in: make(chan []byte, n.cfg.LinkQueue), done: make(chan struct{}),
		acked: make(chan struct{}),
	}
	if !dialer {
		l.inSeq = 1 // the open was message 0
	}
	return l
}

// Dial opens a relay link to node for room, carrying first (the client's
// join). It returns once the owner acknowledged the open; a refusal comes
// back as a *CloseError, silence as ErrOpenTimeout.
func (n *Node) Dial(ctx context.Context, node, room string, first []byte) (*Link, error) {
	if err := checkName("room", room); err != nil {
		return nil, err
	}
	if err := checkName("node id", node); err != nil {
		return nil, err
	}
	if len(first) > n.cfg.MaxFrame {
		return nil, fmt.Errorf("%w: first frame %d bytes, limit %d", ErrFrameTooLarge, len(first), n.cfg.MaxFrame)
	}
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		return nil, ErrNodeClosed
	}
	if len(n.dialed)+len(n.accepted) >= n.cfg.MaxLinks {
		n.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrTooManyLinks, &CloseError{CodeTooManyLinks, fmt.Sprintf("%d open on node %s", n.cfg.MaxLinks, n.id)})
	}
	var id uint64
	for id == 0 || n.dialed[id] != nil {
		id = randomUint64()
	}
	l := n.newLink(id, true, node, room, nil)
	n.dialed[id] = l
	n.mu.Unlock()
	n.met.links.Inc()

	l.mu.Lock()
	ok := l.enqueueLocked(message{kind: kindOpen, room: room, body: first}, true)
	l.mu.Unlock()
	if !ok {
		l.closeLocal(CodeOverflow, "relay send queue full", false)
		return nil, fmt.Errorf("cluster: dial node %s: relay send queue full", node)
	}
	timer := time.NewTimer(n.cfg.OpenTimeout)
	defer timer.Stop()
	select {
	case <-l.acked:
		return l, nil
	case <-l.done:
		select {
		case <-l.acked:
			return l, nil // answered, then closed: its frames are still queued
		default:
		}
		code, reason := l.CloseReason()
		return nil, fmt.Errorf("cluster: dial node %s for room %q: %w", node, room, &CloseError{code, reason})
	case <-timer.C:
		l.Close(CodeOpenTimeout, "open not answered")
		return nil, fmt.Errorf("%w: node %s, room %q, within %s", ErrOpenTimeout, node, room, n.cfg.OpenTimeout)
	case <-ctx.Done():
		l.Close(CodeOpenTimeout, "dial canceled")
		return nil, fmt.Errorf("cluster: dial node %s for room %q: %w", node, room, ctx.Err())
	}
}

func randomUint64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// Send queues frame for the other side. It never blocks: a frame over the
// limit is refused, and a full queue closes the link with CodeOverflow.
func (l *Link) Send(frame []byte) error {
	if len(frame) > l.n.cfg.MaxFrame {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), l.n.cfg.MaxFrame)
	}
	l.mu.Lock()
	if l.closed {
		code, reason := l.code, l.reason
		l.mu.Unlock()
		return fmt.Errorf("%w: %d %s", ErrLinkClosed, code, reason)
	}
	ok := l.enqueueLocked(message{kind: kindFrame, body: frame}, false)
	l.mu.Unlock()
	if !ok {
		l.closeLocal(CodeOverflow, "relay send queue full", true)
		return fmt.Errorf("%w: %d relay send queue full", ErrLinkClosed, CodeOverflow)
	}
	return nil
}

// enqueueLocked numbers m and hands it to the publisher without blocking.
// Frames count against the link's bound; opens, acks and closes do not.
func (l *Link) enqueueLocked(m message, control bool) bool {
	n := l.n
	size := int64(len(m.body) + len(m.room) + len(m.reason))
	if !control && (l.pending.Load() >= int64(n.cfg.LinkQueue) ||
		l.pendingBytes.Load()+size > int64(n.cfg.LinkQueueBytes) ||
		n.outBytes.Load()+size > outQueueBytes) {
		return false
	}
	m.dir = fromAcceptor
	if l.dialer {
		m.dir = fromDialer
	}
	m.link, m.seq, m.from = l.id, l.outSeq, n.id
	data := m.encode()
	select {
	case n.out <- outMsg{channel: inboxKey(l.peer), data: data, link: l, kind: m.kind}:
		l.outSeq++
		l.pending.Add(1)
		l.pendingBytes.Add(int64(len(data)))
		n.outBytes.Add(int64(len(data)))
		return true
	default:
		return false
	}
}

// Frames delivers the other side's frames in order; it is closed when the
// link ends (frames queued before the end are still delivered).
func (l *Link) Frames() <-chan []byte { return l.in }

// First is the frame Dial carried (owner side).
func (l *Link) First() []byte { return l.first }

// Room is the room the link was opened for.
func (l *Link) Room() string { return l.room }

// Peer is the other node's id.
func (l *Link) Peer() string { return l.peer }

// Done is closed when the link has ended.
func (l *Link) Done() <-chan struct{} { return l.done }

// CloseReason says why the link ended: the other side's code and reason,
// or one of this package's codes. Zero while open.
func (l *Link) CloseReason() (code int, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.code, l.reason
}

// Close ends the link and tells the other side. Idempotent.
func (l *Link) Close(code int, reason string) { l.closeLocal(code, reason, true) }

func (l *Link) closeLocal(code int, reason string, tell bool) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if tell {
		// Best effort: if even the node's queue is full the other side
		// learns from the gap, an unknown-link reply or membership.
		l.enqueueLocked(message{kind: kindClose, code: code, reason: reason}, true)
	}
	l.closed, l.code, l.reason = true, code, reason
	l.sizes = nil
	l.mu.Unlock()

	n := l.n
	n.mu.Lock()
	if l.dialer {
		if n.dialed[l.id] == l {
			delete(n.dialed, l.id)
		}
	} else if k := (acceptKey{l.peer, l.id}); n.accepted[k] == l {
		delete(n.accepted, k)
	}
	n.mu.Unlock()
	// Out of the tables first, so whoever waits on Done sees the node
	// without the link. Nothing sends on in once closed is set.
	close(l.in)
	close(l.done)
	n.met.links.Dec()
	n.met.closes.WithLabelValues(codeLabel(code)).Inc()
}

// receive applies one message from the other side, in sequence.
func (l *Link) receive(m message) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if m.seq != l.inSeq && !(m.kind == kindClose && m.code == CodeUnknownLink) {
		want := l.inSeq
		l.mu.Unlock()
		l.closeLocal(CodeGap, fmt.Sprintf("relay gap: expected message %d, got %d (a Redis message was lost)", want, m.seq), true)
		return
	}
	l.inSeq++
	switch m.kind {
	case kindAck:
		if l.dialer && !l.gotAck {
			l.gotAck = true
			close(l.acked)
		}
		l.mu.Unlock()
	case kindFrame:
		if len(m.body) > l.n.cfg.MaxFrame {
			l.mu.Unlock()
			l.closeLocal(CodeTooLarge, fmt.Sprintf("relayed frame of %d bytes over the limit %d", len(m.body), l.n.cfg.MaxFrame), true)
			return
		}
		if !l.deliverLocked(m.body) {
			l.mu.Unlock()
			l.closeLocal(CodeOverflow, "relay receive queue full (the reader is too slow)", true)
			return
		}
		l.mu.Unlock()
		l.n.met.frames.WithLabelValues("in").Inc()
	case kindClose:
		l.mu.Unlock()
		l.closeLocal(m.code, m.reason, false)
	default:
		l.mu.Unlock()
	}
}

// deliverLocked queues a frame for the reader if both bounds allow it.
func (l *Link) deliverLocked(f []byte) bool {
	for unread := len(l.in); len(l.sizes) > unread; l.sizes = l.sizes[1:] {
		l.bytes -= l.sizes[0]
	}
	if len(l.in) == cap(l.in) || l.bytes+len(f) > l.n.cfg.LinkQueueBytes {
		return false
	}
	l.sizes = append(l.sizes, len(f))
	l.bytes += len(f)
	l.in <- f
	return true
}
