package sdk_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestServerTimeoutReconnects: the server stops answering on the bot's
// signaling connection without closing it (as a paused, SIGSTOPped node
// does: the TCP connection stays up, nothing arrives). The bot takes it
// for dead after Options.ServerTimeout without a message or a ping, and
// reconnects, resuming its session (same participant). The server pings
// every second here and the bot waits three pings, the production ratio.
func TestServerTimeoutReconnects(t *testing.T) {
	srv := startServerWith(t, func(c *node.Config) { c.Signaling.PingInterval = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	px := newFreezeProxy(t, srv.Addr().String())

	var mu sync.Mutex
	var causes []error
	var resumedAs []string
	r, err := sdk.Join(ctx, "http://"+px.addr(), mintToken(t, srv, "bot", "silent", protocol.AllGrants()), sdk.Options{
		ServerTimeout: 3 * time.Second,
		OnReconnecting: func(cause error) {
			mu.Lock()
			causes = append(causes, cause)
			mu.Unlock()
		},
		OnReconnect: func(self protocol.Participant) {
			mu.Lock()
			resumedAs = append(resumedAs, self.ID)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Leave()
	id := r.Self().ID

	px.freeze() // the connections open now go silent; new ones pass
	waitFor(t, "the bot to notice the silent server and reconnect", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(resumedAs) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	var ne net.Error
	if len(causes) == 0 || !errors.As(causes[0], &ne) || !ne.Timeout() {
		t.Fatalf("the bot reconnected because of %v, want its read deadline", causes)
	}
	if resumedAs[0] != id || r.Self().ID != id {
		t.Fatalf("after the reconnect the bot is %s, want the resumed %s", resumedAs[0], id)
	}
}

// freezeProxy forwards TCP connections to a server; freeze makes the ones
// open at that moment silent both ways (bytes are held, not forwarded,
// and the connections stay open) while new ones are forwarded.
type freezeProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	open   []*frozenPair // every connection, frozen or not
	closed bool
	wg     sync.WaitGroup // accept and the pipes
}

type frozenPair struct {
	a, b   net.Conn
	frozen chan struct{} // closed by freeze
	once   sync.Once
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) addr() string { return p.ln.Addr().String() }

func (p *freezeProxy) accept() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			a.Close()
			continue
		}
		pair := &frozenPair{a: a, b: b, frozen: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			a.Close()
			b.Close()
			return
		}
		p.open = append(p.open, pair)
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(pair, a, b)
		go p.pipe(pair, b, a)
	}
}

// pipe copies from src to dst until either ends; once frozen it drops what
// it reads instead (so neither side hears anything, and neither is closed).
func (p *freezeProxy) pipe(pair *frozenPair, src, dst net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-pair.frozen:
			default:
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			select {
			case <-pair.frozen: // a frozen peer does not hear the other end go
			default:
				dst.Close()
			}
			return
		}
	}
}

func (p *freezeProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pair := range p.open {
		pair.once.Do(func() { close(pair.frozen) })
	}
}

// close ends the proxy: its listener, every connection, every pipe.
func (p *freezeProxy) close() {
	p.mu.Lock()
	p.closed = true
	pairs := p.open
	p.mu.Unlock()
	p.ln.Close()
	for _, pair := range pairs {
		pair.a.Close()
		pair.b.Close()
	}
	p.wg.Wait()
}
