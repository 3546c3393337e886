package sfu

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// sendWorkers run the batches of every send path whose subscriber is
// reached over UDP: one goroutine per CPU, taking ready send paths in turn,
// one batch each.
//
// Why, and not a goroutine per subscriber (which every path still has, for
// the writes that can block): a forwarder that reads one packet queues it on
// N send paths. With a goroutine each, that is N wake-ups, most of them
// across cores, for every packet that arrives alone, which is how a
// browser's paced video arrives (libwebrtc's pacer sends a frame in bursts
// 5 ms apart); a wake-up cost about as much as the GSO send it led to. Here
// it is at most one per worker: a worker that wakes takes every path that
// became ready meanwhile, and while it works the forwarder's further packets
// join the queues of paths already waiting their turn, so a subscriber's
// packets still leave together (docs/PERFORMANCE.md has the numbers).
//
// A UDP write does not block for long (the kernel drops rather than waits
// when a queue is full), so a worker is never held by one subscriber; a
// path whose selected pair is TCP is run by its own goroutine instead.
type sendWorkers struct {
	mu      sync.Mutex
	ready   pathRing // paths with queued items and no runner, each at most once
	waiting int      // workers waiting on wake
	closed  bool
	wake    chan struct{} // one token per waiting worker, so a send never blocks
	wg      sync.WaitGroup

	wakeups atomic.Uint64 // workers woken (a metric: wake-ups per packet)
}

// newSendWorkers starts n workers (n < 1: one per CPU the runtime uses).
func newSendWorkers(n int) *sendWorkers {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	w := &sendWorkers{wake: make(chan struct{}, n)}
	w.wg.Add(n)
	for range n {
		go w.run()
	}
	return w
}

// schedule hands a path that just became ready (it has items and no
// runner) to the workers, waking one if any is waiting. It reports false
// after close: the caller then runs the path another way.
func (w *sendWorkers) schedule(s *sendPath) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.ready.push(s)
	wake := w.waiting > 0
	if wake {
		w.waiting--
	}
	w.mu.Unlock()
	if wake {
		w.wakeups.Add(1)
		w.wake <- struct{}{}
	}
	return true
}

func (w *sendWorkers) run() {
	defer w.wg.Done()
	for {
		s := w.next()
		if s == nil {
			return
		}
		if s.runBatch() {
			// More is queued: to the back of the line, so that a path with
			// a backlog takes turns with the others, a batch at a time.
			if !w.requeue(s) {
				s.handOver()
			}
		}
	}
}

// next waits for a ready path; nil after close.
func (w *sendWorkers) next() *sendPath {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.ready.n == 0 {
		if w.closed {
			return nil
		}
		w.waiting++
		w.mu.Unlock()
		<-w.wake
		w.mu.Lock()
	}
	return w.ready.pop()
}

func (w *sendWorkers) requeue(s *sendPath) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.ready.push(s)
	return true
}

// close stops the workers and waits for them. Paths still waiting for a
// turn go to their own goroutines, so that nothing queued is stranded.
func (w *sendWorkers) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	var left []*sendPath
	for w.ready.n > 0 {
		left = append(left, w.ready.pop())
	}
	for range w.waiting {
		w.wake <- struct{}{}
	}
	w.waiting = 0
	w.mu.Unlock()
	w.wg.Wait()
	for _, s := range left {
		s.handOver()
	}
}

// pathRing is a FIFO of send paths that grows as needed; it never holds a
// path twice, so it is bounded by the number of subscriber PeerConnections.
type pathRing struct {
	items []*sendPath
	head  int
	n     int
}

func (r *pathRing) push(s *sendPath) {
	if r.n == len(r.items) {
		grown := make([]*sendPath, max(16, 2*len(r.items)))
		for i := range r.n {
			grown[i] = r.items[(r.head+i)%len(r.items)]
		}
		r.items, r.head = grown, 0
	}
	r.items[(r.head+r.n)%len(r.items)] = s
	r.n++
}

func (r *pathRing) pop() *sendPath {
	s := r.items[r.head]
	r.items[r.head] = nil
	r.head = (r.head + 1) % len(r.items)
	r.n--
	return s
}
