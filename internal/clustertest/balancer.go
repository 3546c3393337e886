package clustertest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Balancer is a plain round-robin TCP load balancer, like an operator's
// HAProxy or cloud LB in TCP mode: no stickiness, no knowledge of rooms. It
// skips a backend that refuses the connection, and one whose /healthz has
// not answered its last check (checked every 500 ms with a 1 s timeout, as
// load balancers' health checks do: a paused process still accepts TCP
// connections in the kernel, and without a check a third of the clients
// would wait on it).
type Balancer struct {
	ln       net.Listener
	backends []string

	mu    sync.Mutex
	next  int
	down  map[string]bool
	picks map[string]int
	conns map[net.Conn]struct{}

	stop chan struct{}
	wg   sync.WaitGroup // the accept loop, health checker and proxied pairs
}

// NewBalancer listens on a free loopback port; it is closed when the test
// ends.
func NewBalancer(t testing.TB, backends ...string) *Balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("balancer: %v", err)
	}
	b := &Balancer{ln: ln, backends: backends, down: map[string]bool{},
		picks: map[string]int{}, conns: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	b.wg.Add(2)
	go b.accept()
	go b.check()
	t.Cleanup(b.Close)
	return b
}

// URL is the balancer's http:// URL.
func (b *Balancer) URL() string { return "http://" + b.ln.Addr().String() }

// Picks returns how many connections went to each backend.
func (b *Balancer) Picks() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{}
	for k, v := range b.picks {
		out[k] = v
	}
	return out
}

// Close stops accepting, cuts every proxied connection and waits for all
// of the balancer's goroutines.
func (b *Balancer) Close() {
	select {
	case <-b.stop:
		return
	default:
	}
	close(b.stop)
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *Balancer) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go b.serve(c)
	}
}

func (b *Balancer) check() {
	defer b.wg.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
		for _, addr := range b.backends {
			ok := healthy(addr, time.Second)
			b.mu.Lock()
			b.down[addr] = !ok
			b.mu.Unlock()
		}
	}
}

// order is the round-robin order for the next connection: healthy
// backends first, the rest after them (if all look down, try them anyway).
func (b *Balancer) order() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var up, down []string
	for i := range b.backends {
		a := b.backends[(b.next+i)%len(b.backends)]
		if b.down[a] {
			down = append(down, a)
		} else {
			up = append(up, a)
		}
	}
	b.next++
	return append(up, down...)
}

func (b *Balancer) serve(c net.Conn) {
	defer b.wg.Done()
	var backend net.Conn
	for _, addr := range b.order() {
		var err error
		backend, err = net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			b.mu.Lock()
			b.picks[addr]++
			b.mu.Unlock()
			break
		}
	}
	if backend == nil {
		c.Close()
		return
	}
	if !b.track(c, backend) {
		c.Close()
		backend.Close()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(backend, c)
	}()
	pipe(c, backend)
	<-done
	b.untrack(c, backend)
}

// pipe copies src to dst, then closes both: when one side ends, so does
// the connection, as it would through a TCP proxy.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

func (b *Balancer) track(cs ...net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.stop:
		return false
	default:
	}
	for _, c := range cs {
		b.conns[c] = struct{}{}
	}
	return true
}

func (b *Balancer) untrack(cs ...net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cs {
		delete(b.conns, c)
	}
}
