package sfu_test

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// shapedLink is a bot's downlink with a real rate limit: one FIFO queue,
// bounded in bytes, drained by a token bucket; a datagram that does not fit
// the queue is dropped (drop tail), as a router's would be. It sits in the
// bot's sockets (a pion/transport Net given to its setting engine through
// sdk.Options.Settings), beneath ICE, DTLS and SRTP, so what it
// drops is lost on the network: NACKs repair it, SRTP sees retransmissions
// as new packets, and the transport-wide feedback the bot sends reports
// arrivals as the link delivers them (delays while the queue fills, losses
// when it overflows). Everything the bot receives is shaped; what it sends
// is not.
//
// Sizes count the UDP payload plus linkOverhead (UDP/IP headers).
type shapedLink struct {
	mu      sync.Mutex
	rate    float64 // bits/s; 0: unlimited
	queue   []shapedPacket
	queued  int // bytes in queue
	limit   int // queue bound, bytes
	tokens  float64
	last    time.Time
	wake    chan struct{} // the queue or the rate changed
	quit    chan struct{}
	closing sync.Once
	wg      sync.WaitGroup

	dropped   atomic.Int64 // dropped at the queue's tail
	delivered atomic.Int64
	overrun   atomic.Int64 // dropped because the reader above did not keep up
}

type shapedPacket struct {
	data []byte
	from net.Addr
	to   *shapedConn
}

const (
	linkOverhead = 28
	// linkBurst is the token bucket's depth: a few packets, so the rate
	// holds over any tens of milliseconds.
	linkBurst = 3000
)

// newShapedLink makes a link that holds queue bytes at most; it is
// unlimited until setRate. close stops it and waits for its goroutines:
// call it after the PeerConnections using it are closed.
func newShapedLink(queue int) *shapedLink {
	l := &shapedLink{limit: queue, wake: make(chan struct{}, 1), quit: make(chan struct{}), last: time.Now()}
	l.wg.Add(1)
	go l.run()
	return l
}

// setRate limits the link to bps bits/s (0: unlimited).
func (l *shapedLink) setRate(bps float64) {
	l.mu.Lock()
	l.rate = bps
	l.mu.Unlock()
	l.poke()
}

func (l *shapedLink) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *shapedLink) close() {
	l.closing.Do(func() { close(l.quit) })
	l.wg.Wait()
}

// enqueue puts a packet at the queue's tail, or drops it when the queue is
// full. An unlimited link with nothing queued hands it straight to the
// reader: a link with no limit must not drop packets because a starved
// test process did not run its drain goroutine in time.
func (l *shapedLink) enqueue(b []byte, from net.Addr, to *shapedConn) {
	l.mu.Lock()
	if l.rate == 0 && len(l.queue) == 0 {
		l.mu.Unlock()
		l.deliver(shapedPacket{data: b, from: from, to: to})
		return
	}
	if l.queued+len(b) > l.limit {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	l.queue = append(l.queue, shapedPacket{data: b, from: from, to: to})
	l.queued += len(b)
	l.mu.Unlock()
	l.poke()
}

// run drains the queue at the rate: the link's one goroutine.
func (l *shapedLink) run() {
	defer l.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := l.drain()
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-l.quit:
			return
		case <-l.wake:
		case <-timer.C:
		}
		if wait > 0 && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// drain delivers what the tokens allow and says how long until the next
// packet may go (0: the queue is empty, wait for a packet).
func (l *shapedLink) drain() time.Duration {
	for {
		l.mu.Lock()
		now := time.Now()
		if l.rate > 0 {
			l.tokens = min(l.tokens+l.rate/8*now.Sub(l.last).Seconds(), linkBurst)
		}
		l.last = now
		if len(l.queue) == 0 {
			l.mu.Unlock()
			return 0
		}
		p := l.queue[0]
		size := float64(len(p.data) + linkOverhead)
		if l.rate > 0 && l.tokens < size {
			wait := time.Duration((size - l.tokens) * 8 / l.rate * float64(time.Second))
			l.mu.Unlock()
			return max(wait, 100*time.Microsecond)
		}
		if l.rate > 0 {
			l.tokens -= size
		}
		l.queue[0] = shapedPacket{}
		l.queue = l.queue[1:]
		l.queued -= len(p.data)
		l.mu.Unlock()
		l.deliver(p)
	}
}

func (l *shapedLink) deliver(p shapedPacket) {
	select {
	case p.to.out <- p: // never blocks: a reader too slow loses packets
		l.delivered.Add(1)
	default:
		l.overrun.Add(1)
	}
}

// net is a network stack whose UDP sockets receive through the link.
func (l *shapedLink) net(t interface{ Fatal(...any) }) transport.Net {
	n, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	return &shapedNet{Net: n, l: l}
}

type shapedNet struct {
	*stdnet.Net
	l *shapedLink
}

func (n *shapedNet) ListenUDP(network string, addr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, addr)
	if err != nil {
		return nil, err
	}
	return n.l.attach(c), nil
}

// ListenPacket is wrapped only for UDP sockets, which are then UDPConns.
func (n *shapedNet) ListenPacket(network, addr string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	if u, ok := c.(transport.UDPConn); ok {
		return n.l.attach(u), nil
	}
	return c, nil
}

// shapedConn is a UDP socket whose reads come out of the link: a pump
// reads the socket as fast as datagrams arrive into the link's queue (the
// link owns the pump and waits for it in close; closing the socket ends
// it), and ReadFrom returns what the link delivers.
type shapedConn struct {
	transport.UDPConn
	out  chan shapedPacket
	done chan struct{} // the socket beneath is closed
}

func (l *shapedLink) attach(c transport.UDPConn) *shapedConn {
	s := &shapedConn{UDPConn: c, out: make(chan shapedPacket, 1024), done: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(s.done)
		for {
			b := make([]byte, 1500)
			n, from, err := c.ReadFrom(b)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				return
			}
			l.enqueue(b[:n], from, s)
		}
	}()
	return s
}

func (s *shapedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-s.out:
		return copy(b, p.data), p.from, nil
	case <-s.done:
		return 0, nil, net.ErrClosed
	}
}

func (s *shapedConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, from, err := s.ReadFrom(b)
	u, _ := from.(*net.UDPAddr)
	return n, u, err
}

func (s *shapedConn) Read(b []byte) (int, error) {
	n, _, err := s.ReadFrom(b)
	return n, err
}
