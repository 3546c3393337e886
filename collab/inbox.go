package collab

import "sync"

// inbox is a document's request queue: submitters append under a lock,
// and the writer takes everything queued at once.
//
// Why not a channel (as before): a buffered channel allocates its whole
// buffer when the document opens, so its depth (1024) was kept small for
// the sake of documents that are open but quiet. It also capped a group
// commit: while the writer waited on fsync at most 1024 ops could queue,
// so the durable store committed about 1000 ops per fsync however slow the
// disk. This queue grows only while a document is busy, up to MaxBatch
// (4096), and the writer takes it in one step instead of one receive per
// request. Submitters wait while it is full: backpressure, as before.
type inbox struct {
	mu    sync.Mutex
	space sync.Cond // signalled when the writer takes the queue
	queue []request
	spare []request     // the array the writer handed back, reused by the next queue
	wake  chan struct{} // one token while the queue is non-empty and not yet taken
	limit int
}

func newInbox(limit int) *inbox {
	in := &inbox{wake: make(chan struct{}, 1), limit: limit}
	in.space.L = &in.mu
	return in
}

// push queues r, waiting while the queue is full.
func (in *inbox) push(r request) {
	in.mu.Lock()
	for len(in.queue) >= in.limit {
		in.space.Wait()
	}
	if in.queue == nil {
		in.queue, in.spare = in.spare, nil
	}
	in.queue = append(in.queue, r)
	first := len(in.queue) == 1
	in.mu.Unlock()
	if first {
		select {
		case in.wake <- struct{}{}:
		default: // a token is already waiting
		}
	}
}

// take returns everything queued, in order (nil if nothing is). Give the
// slice back with recycle when done with it.
func (in *inbox) take() []request {
	in.mu.Lock()
	q := in.queue
	in.queue = nil
	in.mu.Unlock()
	in.space.Broadcast()
	return q
}

// recycle hands back a slice take returned, for the next queue to reuse.
func (in *inbox) recycle(q []request) {
	clear(q) // no references to finished requests
	in.mu.Lock()
	if in.spare == nil {
		in.spare = q[:0]
	}
	in.mu.Unlock()
}
