package signaling

import "sync"

// closeFrame is the WebSocket close the writer sends last.
type closeFrame struct {
	code   int
	reason string
}

type outMsg struct {
	data      []byte
	ephemeral bool
	typ       string // an ephemeral message's type, for the drop metric
}

// sendQueue holds the messages waiting for one client. It is bounded by
// count and by bytes. A writer goroutine runs only while there is
// something to write: start is called (under the lock) when work arrives
// and no writer runs, so an idle connection has none. Ephemeral messages
// (typing, speakersChanged, connectionQuality; presence is a room event
// and is not one) are dropped first when it fills; when only reliable messages are
// left and one more does not fit, push reports an overflow and the session
// gives up on the client (it can resume and get a snapshot).
type sendQueue struct {
	mu        sync.Mutex
	items     []outMsg
	bytes     int
	maxItems  int
	maxBytes  int
	final     *closeFrame   // set once: written after items, then the writer stops
	failed    bool          // overflowed: further pushes are dropped
	running   bool          // a writer goroutine is draining the queue (or none may start)
	done      chan struct{} // closed when the last writer started has stopped
	start     func(done chan struct{})
	ephemeral int              // queued ephemeral messages
	dropped   func(typ string) // called, under mu, for each ephemeral message dropped
}

func newSendQueue(maxItems, maxBytes int, start func(done chan struct{}), dropped func(typ string)) *sendQueue {
	return &sendQueue{maxItems: maxItems, maxBytes: maxBytes, start: start, dropped: dropped}
}

// signal starts a writer unless one runs; q.mu is held.
func (q *sendQueue) signal() {
	if !q.running {
		q.running = true
		q.done = make(chan struct{})
		q.start(q.done)
	}
}

// writerDone is closed once the last writer started has stopped (nil if
// none ever ran).
func (q *sendQueue) writerDone() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.done
}

// seal lets no writer start any more, for a connection that has ended.
func (q *sendQueue) seal() {
	q.mu.Lock()
	q.running = true
	q.mu.Unlock()
}

// push queues a message; typ names an ephemeral one for the drop metric.
// It returns false when a reliable message does not fit even after every
// ephemeral one was dropped.
func (q *sendQueue) push(data []byte, ephemeral bool, typ string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failed || q.final != nil {
		return true // the connection is ending; nothing more goes out
	}
	if q.full(len(data)) {
		if ephemeral {
			q.dropped(typ)
			return true
		}
		q.dropEphemeralLocked()
		if q.full(len(data)) {
			return false
		}
	}
	q.items = append(q.items, outMsg{data: data, ephemeral: ephemeral, typ: typ})
	q.bytes += len(data)
	if ephemeral {
		q.ephemeral++
	}
	q.signal()
	return true
}

func (q *sendQueue) full(n int) bool {
	return len(q.items) >= q.maxItems || (q.bytes+n > q.maxBytes && len(q.items) > 0)
}

func (q *sendQueue) dropEphemeralLocked() {
	if q.ephemeral == 0 {
		return
	}
	kept := q.items[:0]
	for _, m := range q.items {
		if m.ephemeral {
			q.bytes -= len(m.data)
			q.dropped(m.typ)
			continue
		}
		kept = append(kept, m)
	}
	clear(q.items[len(kept):])
	q.items = kept
	q.ephemeral = 0
}

// finishWith makes the writer send what is queued, then last (if any), then a
// close frame, and stop.
func (q *sendQueue) finishWith(f closeFrame, last []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.final != nil {
		return
	}
	if last != nil {
		q.items = append(q.items, outMsg{data: last})
	}
	q.final = &f
	q.signal()
}

// fail discards everything queued: the client gets only last and the
// close frame.
func (q *sendQueue) fail(f closeFrame, last []byte) {
	q.mu.Lock()
	clear(q.items)
	q.items, q.bytes, q.ephemeral = q.items[:0], 0, 0
	q.failed = true
	q.final = nil
	q.mu.Unlock()
	q.finishWith(f, last)
}

// pop returns the next message, or the close frame once the messages are
// out; ok is false when there is nothing to do, and then the calling
// writer must stop (the next push starts another).
func (q *sendQueue) pop() (m outMsg, final *closeFrame, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 {
		m = q.items[0]
		q.items[0] = outMsg{}
		q.items = q.items[1:]
		if len(q.items) == 0 {
			q.items = nil // let an idle connection hold no buffer
		}
		q.bytes -= len(m.data)
		if m.ephemeral {
			q.ephemeral--
		}
		return m, nil, true
	}
	if q.final != nil {
		return outMsg{}, q.final, true
	}
	q.running = false
	return outMsg{}, nil, false
}

func (q *sendQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// closing reports whether the connection is ending (a close frame is due).
func (q *sendQueue) closing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.final != nil
}
