package sfu

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Queue bounds of one subscriber's send path, in packets. The video queue
// holds about half a second of 25 subscribed 1 Mbit/s tracks; a subscriber
// that falls further behind loses video, which restarts at a keyframe,
// instead of holding up anyone else. Audio has its own, smaller queue and is
// always sent first, so video backlog never delays or drops speech.
const (
	videoQueueLen = 1024
	audioQueueLen = 256
	// sendBatch bounds how much one wake-up takes from the queues, so that
	// audio arriving behind a long video backlog waits for at most this many
	// packets.
	sendBatch = 64
)

// sendItem names one packet for one downtrack: a slot of the track's packet
// cache, not a copy of the packet.
type sendItem struct {
	d          *DownTrack
	seq        uint16 // input sequence number; for a retransmission, the output one
	layer      int8   // the simulcast layer seq belongs to (first sends)
	retransmit bool
	padding    bool // a probe's padding packet on d's SSRC (probe.go)
}

// ring is a fixed-size FIFO of send items.
type ring struct {
	items []sendItem
	head  int
	n     int
}

func (r *ring) push(it sendItem) bool {
	if r.n == len(r.items) {
		return false
	}
	r.items[(r.head+r.n)%len(r.items)] = it
	r.n++
	return true
}

func (r *ring) popInto(dst []sendItem) int {
	k := min(r.n, len(dst))
	for i := range k {
		dst[i] = r.items[r.head]
		r.items[r.head] = sendItem{}
		r.head = (r.head + 1) % len(r.items)
	}
	r.n -= k
	return k
}

// sendPath is everything one subscriber PeerConnection is sent, in one place:
// the forwarders and the RTCP handler only queue items here, and one runner
// at a time takes them in batches, copies each packet out of its track's
// cache, rewrites it for the subscriber and writes it.
//
// Why queued, not inline on the forwarder's goroutine: a write can block
// (ICE-TCP, or a stalled transport), and one stuck subscriber must never
// delay the others; and a forwarder writing inline to N subscribers keeps
// all of a track's work on one core. The runner is the engine's send
// workers (sendworkers.go: a goroutine per CPU, shared by every path) when
// the subscriber is reached over UDP, and otherwise the path's own
// goroutine, owned by the peer. A runner is woken only when the path goes
// from empty to non-empty, and then takes everything queued meanwhile, so a
// burst of a video frame costs one wake-up, not one per packet
// (measurements in docs/PERFORMANCE.md).
type sendPath struct {
	log *slog.Logger

	mu     sync.Mutex
	audio  ring
	video  ring
	idle   bool // no runner has the path: the next push must start one
	closed bool
	// closeWait, set by close while a runner has the path, is closed by
	// the runner when it lets go.
	closeWait chan struct{}
	wake      chan struct{} // hands the path to its own goroutine
	quit      chan struct{} // ends the own goroutine, after close
	done      chan struct{}
	workers   *sendWorkers // nil: every batch on the own goroutine
	wakes     atomic.Uint64

	ssrcMu sync.Mutex
	bySSRC map[uint32]*DownTrack // bound downtracks, for routing RTCP

	// GSO: the subscriber's address, once ICE has chosen a UDP pair, and
	// the burst each batch gathers its packets into (nil without GSO).
	gso    *gsoConn
	burst  *burst
	remote atomic.Pointer[netip.AddrPort]

	// The runner's state: only the runner that has the path touches it.
	now     int64 // when the current batch started (unix nanos); 0 between batches
	batch   [sendBatch]sendItem
	readAt  [sendBatch]int64 // when the forwarder read each first send of the batch
	rxAt    [sendBatch]int64 // when each reached the server's socket (rxstamp.go)
	nread   int
	buf     [maxPacketSize]byte
	pkt     packet
	twccSeq uint16
	// A downtrack catching up from the cache (simulcast.go) reads here.
	catchBuf [maxPacketSize]byte
	catchPkt packet
	padPkt   packet // a probe's padding (DownTrack.sendPadding)

	est      *estimator // nil for the baseline and in unit tests
	probe    *prober    // nil where est is (probe.go)
	sent     atomic.Uint64
	dropped  atomic.Uint64 // items refused because a queue was full
	behind   atomic.Uint64 // items whose packet left the cache before their turn
	resent   atomic.Uint64
	bytes    atomic.Uint64 // payload and header bytes of first sends
	nacks    atomic.Uint64 // packets subscribers asked to be resent
	plis     atomic.Uint64 // keyframe requests from subscribers: PLI
	firs     atomic.Uint64 // and FIR
	caughtUp atomic.Uint64 // runs started from a cached keyframe, not a new one
	pauses   atomic.Uint64 // videos the allocator paused for this subscriber
	switches atomic.Uint64 // simulcast layer switches
	delays   delayHistogram
	// serverDelays is the same from the packet's arrival at the server's
	// socket: the whole delay the server adds (rxstamp.go).
	serverDelays delayHistogram
}

// delayBuckets are the upper bounds of the forward delay histogram, in
// seconds: fine below 5 ms, where a forwarding server should be.
var delayBuckets = [...]float64{100e-6, 250e-6, 500e-6, 1e-3, 1.5e-3, 2e-3, 3e-3, 4e-3, 5e-3, 7.5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 250e-3}

var delayBucketNs = func() (ns [len(delayBuckets)]int64) {
	for i, b := range delayBuckets {
		ns[i] = int64(b * 1e9)
	}
	return ns
}()

// delayHistogram counts first sends by forward delay: from the forwarder
// reading a packet (after Pion's receive path) to the end of the batch that
// sent it to this subscriber, GSO send included. It is the part of the
// latency a subscriber sees that Huddle's own code adds: the hand-off, the
// wait for the send path's turn on a CPU, the batch and the send. Only the
// send path's worker writes it, once per batch.
//
// batchNs splits the sum: the part spent inside the batch that sent them
// (rewrite, SRTP, gathering the GSO burst and its send), the rest being
// the wait in the queue for the send path to run.
type delayHistogram struct {
	counts  [len(delayBuckets) + 1]atomic.Uint64 // the last: slower than every bucket
	sumNs   atomic.Uint64
	batchNs atomic.Uint64
}

// observe counts the first sends of a batch that started at start.
func (h *delayHistogram) observe(readAt []int64, start int64) {
	if len(readAt) == 0 {
		return
	}
	now := time.Now().UnixNano()
	// Counted locally, then one atomic add per bucket used: a batch's
	// packets mostly share one or two buckets.
	var local [len(delayBuckets) + 1]uint32
	var sum uint64
	for _, at := range readAt {
		d := max(0, now-at)
		sum += uint64(d)
		i := 0
		for i < len(delayBucketNs) && d > delayBucketNs[i] {
			i++
		}
		local[i]++
	}
	for i, n := range local {
		if n != 0 {
			h.counts[i].Add(uint64(n))
		}
	}
	h.sumNs.Add(sum)
	h.batchNs.Add(uint64(len(readAt)) * uint64(max(0, now-start)))
}

func newSendPath(log *slog.Logger) *sendPath {
	return &sendPath{
		log:    log,
		audio:  ring{items: make([]sendItem, audioQueueLen)},
		video:  ring{items: make([]sendItem, videoQueueLen)},
		idle:   true,
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		bySSRC: map[uint32]*DownTrack{},
	}
}

// push queues an item and never blocks. On overflow the item is dropped and
// its downtrack marked, so that it starts a new run (at a keyframe for
// video) with no hole in the sequence numbers its subscriber sees.
func (s *sendPath) push(it sendItem, audio bool) {
	s.mu.Lock()
	var ok bool
	if audio {
		ok = s.audio.push(it)
	} else {
		ok = s.video.push(it)
	}
	wake := ok && s.idle && !s.closed
	if wake {
		s.idle = false
	}
	s.mu.Unlock()
	if !ok {
		s.dropped.Add(1)
		if !it.retransmit && !it.padding {
			it.d.dropped.Store(true)
		}
		return
	}
	if wake {
		s.start()
	}
}

// start hands the path, which has items and was idle, to a runner: the
// send workers when the subscriber is reached over UDP, else its own
// goroutine.
func (s *sendPath) start() {
	if s.workers != nil && s.remote.Load() != nil && s.workers.schedule(s) {
		return
	}
	s.handOver()
}

// handOver gives the path to its own goroutine; the caller has the path.
// It never blocks: one token per time the path leaves idle.
func (s *sendPath) handOver() {
	s.wakes.Add(1)
	s.wake <- struct{}{}
}

// run is the send path's own goroutine; it returns after close.
func (s *sendPath) run() {
	defer close(s.done)
	for {
		select {
		case <-s.wake:
			for s.runBatch() {
			}
		case <-s.quit:
			return
		}
	}
}

// runBatch sends one batch, audio first. The caller has the path; it keeps
// it if runBatch reports that more is queued, and otherwise has let go.
func (s *sendPath) runBatch() bool {
	s.mu.Lock()
	n := 0
	if !s.closed {
		n = s.audio.popInto(s.batch[:])
		n += s.video.popInto(s.batch[n:])
	}
	if n == 0 {
		s.letGoLocked()
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	s.sendTaken(n)
	s.mu.Lock()
	more := !s.closed && s.audio.n+s.video.n > 0
	if !more {
		s.letGoLocked()
	}
	s.mu.Unlock()
	return more
}

// letGoLocked ends the runner's hold on the path: it is idle again, or,
// when close is waiting for the runner, close may go on.
func (s *sendPath) letGoLocked() {
	if !s.closed {
		s.idle = true
		return
	}
	if s.closeWait != nil {
		close(s.closeWait)
		s.closeWait = nil
	}
}

// sendTaken sends the first n items of s.batch, gathered into GSO bursts
// where the path has them, and notes the batch's delays.
func (s *sendPath) sendTaken(n int) {
	gather := s.burst != nil && s.gso.begin(s.burst, s.remoteAddr())
	s.now = time.Now().UnixNano()
	for i := range n {
		s.deliver(s.batch[i])
		s.batch[i] = sendItem{}
	}
	if gather {
		s.gso.end(s.burst)
	}
	start := s.now
	s.now = 0
	s.est.flush() // the batch has left: its send times to the estimator
	s.delays.observe(s.readAt[:s.nread], start)
	s.serverDelays.observe(s.rxAt[:s.nread], start)
	s.nread = 0
}

// useGSO lets the path gather each batch into GSO sends where g is on.
func (s *sendPath) useGSO(g *gsoConn) {
	if g != nil && g.on.Load() {
		s.gso, s.burst = g, g.newBurst()
	}
}

// setRemote records where the subscriber's media goes: the remote address
// of the selected pair when it is UDP (TCP and relayed pairs write
// elsewhere, so they get no bursts).
func (s *sendPath) setRemote(pair *webrtc.ICECandidatePair) {
	if pair == nil || pair.Local == nil || pair.Remote == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP {
		s.remote.Store(nil)
		return
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		s.remote.Store(nil)
		return
	}
	a := netip.AddrPortFrom(ip, pair.Remote.Port)
	s.remote.Store(&a)
}

func (s *sendPath) remoteAddr() netip.AddrPort {
	if a := s.remote.Load(); a != nil {
		return *a
	}
	return netip.AddrPort{}
}

// flush sends everything queued now on the caller's goroutine; for tests
// and benchmarks that drive the path without a runner.
func (s *sendPath) flush() {
	for {
		s.mu.Lock()
		n := s.audio.popInto(s.batch[:])
		n += s.video.popInto(s.batch[n:])
		s.mu.Unlock()
		if n == 0 {
			return
		}
		s.sendTaken(n)
	}
}

// close stops the path: it waits for the runner that has it, if any, to
// finish its batch, then for its own goroutine to end. Queued items are
// discarded.
func (s *sendPath) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closed = true
	var wait chan struct{}
	if !s.idle {
		wait = make(chan struct{})
		s.closeWait = wait
	}
	s.idle = false // nobody starts it again
	s.mu.Unlock()
	if wait != nil {
		<-wait
	}
	close(s.quit)
	<-s.done
}

// deliver copies one packet out of its track's cache and sends it.
func (s *sendPath) deliver(it sendItem) {
	d := it.d
	if d.closed.Load() {
		return
	}
	if it.padding {
		d.sendPadding()
		return
	}
	in, layer := it.seq, it.layer
	var h seqPair
	if it.retransmit {
		var ok bool
		if h, ok = d.resendable(it.seq, time.Now()); !ok {
			return
		}
		in, layer = h.in, h.layer
	}
	l := d.fwd.layer(layer)
	if l == nil {
		return
	}
	n, key, at, rx, ok := l.cache.loadAt(in, s.buf[:])
	if !ok {
		if !it.retransmit {
			// Overwritten before we got to it: this subscriber fell
			// behind by a whole cache. Same as a queue overflow.
			d.dropped.Store(true)
			s.behind.Add(1)
		}
		return
	}
	p := &s.pkt
	hl, err := p.header.Unmarshal(s.buf[:n])
	if err != nil {
		return // the forwarder stored only packets that parse
	}
	end := n
	if p.header.Padding {
		end -= int(s.buf[n-1])
	}
	p.payload = s.buf[hl:end]
	p.keyframe = key
	if it.retransmit {
		if d.resend(p, it.seq, h) {
			s.resent.Add(1)
		}
		return
	}
	if d.send(p, layer) {
		s.sent.Add(1)
		s.bytes.Add(uint64(n))
		if s.nread < len(s.readAt) {
			s.readAt[s.nread], s.rxAt[s.nread] = at, rx
			s.nread++
		}
	}
}

// nextTWCC numbers the packets of this PeerConnection for the subscriber's
// transport-wide congestion control feedback; only the worker calls it.
func (s *sendPath) nextTWCC() uint16 {
	s.twccSeq++
	return s.twccSeq
}

func (s *sendPath) bind(ssrc uint32, d *DownTrack) {
	s.ssrcMu.Lock()
	s.bySSRC[ssrc] = d
	s.ssrcMu.Unlock()
}

func (s *sendPath) unbind(ssrc uint32, d *DownTrack) {
	s.ssrcMu.Lock()
	if s.bySSRC[ssrc] == d {
		delete(s.bySSRC, ssrc)
	}
	s.ssrcMu.Unlock()
}

func (s *sendPath) downTrack(ssrc uint32) *DownTrack {
	s.ssrcMu.Lock()
	defer s.ssrcMu.Unlock()
	return s.bySSRC[ssrc]
}

// linkSample is the estimator's view for one allocation tick.
func (s *sendPath) linkSample(now time.Time) (est float64, known, congested bool) {
	return s.est.sample(s.bytes.Load(), now)
}
