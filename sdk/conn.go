package sdk

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// signalConn is the bot's WebSocket: one reader (the room's loop) and
// writes serialised by a mutex.
type signalConn struct {
	ws *websocket.Conn
	mu sync.Mutex
	// silence: once set (before the read loop starts), a read that hears
	// nothing from the server, not even a ping, for this long fails, so
	// that a server that stopped (paused, or its network gone without a
	// reset) is noticed and the room reconnects.
	silence time.Duration
}

// DefaultServerTimeout is Options.ServerTimeout's default: three of the
// server's ping intervals.
const DefaultServerTimeout = 3 * protocol.PingInterval

// watchSilence arms the read deadline (see silence).
func (c *signalConn) watchSilence(d time.Duration) {
	if d <= 0 {
		d = DefaultServerTimeout
	}
	c.silence = d
}

// wsURL accepts a server's page URL (http://host:7880) or its WebSocket URL
// (ws://host:7880/ws) and returns the WebSocket URL.
func wsURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("server url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("server url %q: scheme must be http, https, ws or wss", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	return u, nil
}

// A server refuses connections past its per-address join rate with 429 and
// says when to come back (Retry-After, seconds). Many bots on one machine
// (a load generator, a bench ramp) share an address, so dial waits as told,
// spread by a random half so that they do not all come back in the same
// instant, up to dialRetries times.
const (
	dialRetries   = 8
	maxRetryAfter = 10 * time.Second
)

func dial(ctx context.Context, u *url.URL) (*signalConn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	var ws *websocket.Conn
	for attempt := 0; ; attempt++ {
		var resp *http.Response
		var err error
		ws, resp, err = d.DialContext(ctx, u.String(), nil)
		if err == nil {
			break
		}
		if resp == nil {
			return nil, fmt.Errorf("dial %s: %w", u, err)
		}
		if resp.StatusCode != http.StatusTooManyRequests || attempt == dialRetries {
			return nil, fmt.Errorf("dial %s: %w (http %s)", u, err, resp.Status)
		}
		wait := retryAfter(resp.Header.Get("Retry-After"))
		wait += rand.N(wait/2 + 1)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial %s: %w (waiting out http %s)", u, ctx.Err(), resp.Status)
		case <-time.After(wait):
		}
	}
	c := &signalConn{ws: ws}
	// The server pings; answering resets its deadline for us, and hearing
	// it resets ours.
	ws.SetPingHandler(func(data string) error {
		c.extend()
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	return c, nil
}

// retryAfter reads a Retry-After in seconds: 1 s when absent or not a
// number of seconds, at most maxRetryAfter.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 1 {
		return time.Second
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

// extend moves the read deadline on after hearing from the server. It runs
// on the reader's goroutine (read, and the ping handler inside it).
func (c *signalConn) extend() {
	if c.silence > 0 {
		_ = c.ws.SetReadDeadline(time.Now().Add(c.silence))
	}
}

func (c *signalConn) send(m any) error {
	data, err := protocol.Encode(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("send %s: %w", protocol.TypeOf(m), err)
	}
	return nil
}

// read returns the next message and its room event seq (0 if it is not a
// room event).
func (c *signalConn) read() (any, uint64, error) {
	c.extend()
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, 0, err
	}
	return protocol.DecodeEvent(data)
}

func (c *signalConn) close() error {
	c.mu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.mu.Unlock()
	return c.ws.Close()
}

func isLoopbackHost(u *url.URL) bool {
	h := strings.Trim(u.Hostname(), "[]")
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}

// abort closes the connection without a close frame, as a network failure
// would.
func (c *signalConn) abort() error { return c.ws.Close() }
