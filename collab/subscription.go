package collab

import "sync"

// Subscription streams the ops applied to a document after Rev, in order,
// starting from Text (the text at Rev). C is closed when the subscription
// ends: by Close, or by the service — Err then says why: ErrLagging when
// the subscriber fell more than Config.SubscriberQueue ops behind (the
// writer never waits for a subscriber; catch up with OpsSince(lastRev) or
// subscribe again), ErrDocDeleted, or ErrClosed.
type Subscription struct {
	Rev  int64
	Text string
	C    <-chan OpRecord

	mu     sync.Mutex
	ch     chan OpRecord
	closed bool
	err    error
}

func newSubscription(rev int64, text string, queue int) *Subscription {
	ch := make(chan OpRecord, queue)
	return &Subscription{Rev: rev, Text: text, C: ch, ch: ch}
}

// sharedEncoding is one record's encoding, made by the first subscriber
// that asks and reused by the rest.
type sharedEncoding struct {
	once sync.Once
	b    []byte
}

// SharedEncoding returns enc(r), made once for every subscriber that got
// r from the same broadcast (with twenty people in a document, one JSON
// encoding of an op instead of twenty). enc must give every subscriber
// the same bytes for r. For a record that did not come from a
// subscription it is enc(r).
func (r *OpRecord) SharedEncoding(enc func(OpRecord) []byte) []byte {
	s := r.shared
	if s == nil {
		return enc(*r)
	}
	s.once.Do(func() { s.b = enc(*r) })
	return s.b
}

// send delivers r without blocking; a full queue ends the subscription
// with ErrLagging. It reports whether the subscription is still live.
func (s *Subscription) send(r OpRecord) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	select {
	case s.ch <- r:
		return true
	default:
		s.closeLocked(ErrLagging)
		return false
	}
}

func (s *Subscription) closeLocked(err error) {
	if !s.closed {
		s.closed, s.err = true, err
		close(s.ch)
	}
}

func (s *Subscription) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked(err)
}

func (s *Subscription) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close ends the subscription. Ops already queued stay readable from C.
func (s *Subscription) Close() { s.end(nil) }

// Err is why the subscription ended (nil if it is live or was closed by
// its owner).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
