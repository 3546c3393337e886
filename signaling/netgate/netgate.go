// Package netgate forwards TCP connections to a server until a test cuts
// them: a network outage for one client, on loopback. Cut closes the open
// connections without a WebSocket close frame; while the gate is shut new
// connections are refused; Open lets them through again. Freeze instead
// keeps the connections open but forwards nothing, like a path that died
// without a FIN; FreezeOpen does that to the connections open now only,
// and forwards the ones that come after.
package netgate

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Gate is a TCP forwarder in front of one address.
type Gate struct {
	ln     net.Listener
	target string
	shut   atomic.Bool
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	held   []*atomic.Bool // per connection pair: FreezeOpen froze it
	// accepted counts the connections forwarded so far.
	accepted atomic.Int64
	wg       sync.WaitGroup
}

// New listens on a loopback port and forwards to target.
func New(target string) (*Gate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &Gate{ln: ln, target: target}
	g.wg.Add(1)
	go g.accept()
	return g, nil
}

// Addr is the gate's host:port, to dial instead of the target.
func (g *Gate) Addr() string { return g.ln.Addr().String() }

func (g *Gate) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if g.shut.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", g.target)
		if err != nil {
			c.Close()
			continue
		}
		g.accepted.Add(1)
		held := new(atomic.Bool)
		g.mu.Lock()
		g.conns = append(g.conns, c, up)
		g.held = append(g.held, held)
		g.mu.Unlock()
		g.wg.Add(2)
		go g.pipe(c, up, held)
		go g.pipe(up, c, held)
	}
}

func (g *Gate) pipe(dst, src net.Conn, held *atomic.Bool) {
	defer g.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !g.frozen.Load() && !held.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// Cut closes every open connection and refuses new ones until Open.
func (g *Gate) Cut() {
	g.shut.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
	g.held = nil
}

// Open lets new connections through again.
func (g *Gate) Open() { g.shut.Store(false) }

// Freeze stops forwarding on the open connections without closing them.
func (g *Gate) Freeze() { g.frozen.Store(true) }

// FreezeOpen stops forwarding on the connections open now, without
// closing them; connections accepted later are forwarded as usual.
func (g *Gate) FreezeOpen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, h := range g.held {
		h.Store(true)
	}
}

// Accepted counts the connections the gate has forwarded so far.
func (g *Gate) Accepted() int {
	return int(g.accepted.Load())
}

// Close stops the gate and waits for its goroutines.
func (g *Gate) Close() {
	g.ln.Close()
	g.Cut()
	g.wg.Wait()
}

// Start is New for a test: it fails the test on error and closes the gate
// when the test ends.
func Start(t testing.TB, target string) *Gate {
	t.Helper()
	g, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}
