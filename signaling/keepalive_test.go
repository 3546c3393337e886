package signaling_test

// The keepalive tests drive a real node (HTTP, signaling, SFU) over a real
// WebSocket: the external test package may import node, which imports
// signaling.

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// client is one test WebSocket with a read deadline per message.
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, n *node.Node) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.URL(), "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws}
}

func (c *client) sendRaw(data string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(data)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) send(m any) {
	c.t.Helper()
	data, err := protocol.Encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(data))
}

// next returns the next message, failing the test if none comes within
// ten seconds or the connection ends.
func (c *client) next() any {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("reading: %v", err)
	}
	m, err := protocol.Decode(data)
	if err != nil {
		c.t.Fatalf("undecodable %s: %v", data, err)
	}
	return m
}

// waitFor reads until a message matches.
func waitFor[T any](c *client, match func(T) bool) T {
	c.t.Helper()
	for {
		if m, ok := c.next().(T); ok && match(m) {
			return m
		}
	}
}

func (c *client) join(n *node.Node, identity, room string) *protocol.Joined {
	c.t.Helper()
	c.send(&protocol.Join{Version: protocol.Version, Token: sdktest.Token(c.t, n, identity, room, protocol.AllGrants())})
	return waitFor(c, func(*protocol.Joined) bool { return true })
}

// TestPingAnsweredWithPong: a ping is answered with a pong echoing its id,
// before the join and after it; a ping without an id gets a pong without.
func TestPingAnsweredWithPong(t *testing.T) {
	n := sdktest.Start(t)
	c := dial(t, n)
	c.send(&protocol.Ping{ID: "before-join"})
	if p, ok := c.next().(*protocol.Pong); !ok || p.ID != "before-join" {
		t.Fatalf("answer to a ping before the join: %#v, want pong before-join", p)
	}
	c.join(n, "ann", "r")
	c.send(&protocol.Ping{ID: "7"})
	if p := waitFor(c, func(*protocol.Pong) bool { return true }); p.ID != "7" {
		t.Fatalf("pong id %q, want 7", p.ID)
	}
	c.sendRaw(`{"type":"ping"}`)
	if p := waitFor(c, func(*protocol.Pong) bool { return true }); p.ID != "" {
		t.Fatalf("pong id %q for a ping without one", p.ID)
	}
}

// TestMalformedPingRefused: a ping whose id is not a string, or is longer
// than the bound, is refused with bad_message and not echoed; the
// connection carries on and answers the next ping.
func TestMalformedPingRefused(t *testing.T) {
	n := sdktest.Start(t)
	c := dial(t, n)
	c.join(n, "ann", "r")
	for _, bad := range []string{
		`{"type":"ping","id":{"a":1}}`,
		`{"type":"ping","id":"` + strings.Repeat("x", protocol.MaxPingIDLen+1) + `"}`,
	} {
		c.sendRaw(bad)
		m := c.next()
		e, ok := m.(*protocol.Error)
		if !ok || e.Code != protocol.CodeBadMessage || !strings.Contains(e.Message, "ping") {
			t.Fatalf("answer to %.60s: %#v, want a bad_message error about the ping", bad, m)
		}
		t.Logf("refused: %s", e.Message)
	}
	c.send(&protocol.Ping{ID: strings.Repeat("y", protocol.MaxPingIDLen)})
	if p := waitFor(c, func(*protocol.Pong) bool { return true }); len(p.ID) != protocol.MaxPingIDLen {
		t.Fatalf("pong id of %d bytes, want %d", len(p.ID), protocol.MaxPingIDLen)
	}
}

// TestPingsRateLimited: pings count against the connection's message rate
// like any message: a flood far beyond the burst gets rate_limited and
// fewer pongs than pings, and the connection survives it (a ping sent once
// the limiter refills is answered).
func TestPingsRateLimited(t *testing.T) {
	n := sdktest.Start(t)
	c := dial(t, n)
	c.join(n, "ann", "r")
	const flood = 1000 // the default burst is 200, the rate 50 a second
	for i := 0; i < flood; i++ {
		c.send(&protocol.Ping{ID: "flood"})
	}
	// The reader owns the socket's read side; it stops when the test
	// closes the socket (cleanup) and the test waits for it.
	msgs := make(chan any, 64)
	done := make(chan struct{})
	t.Cleanup(func() { c.ws.Close(); <-done })
	go func() {
		defer close(done)
		defer close(msgs)
		for {
			_, data, err := c.ws.ReadMessage()
			if err != nil {
				return
			}
			if m, err := protocol.Decode(data); err == nil {
				msgs <- m
			}
		}
	}()
	pongs, limited := 0, false
	retry := time.NewTicker(200 * time.Millisecond) // until one "after" gets through
	defer retry.Stop()
	deadline := time.After(30 * time.Second)
	for answered := false; !answered; {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatal("the connection ended under the flood")
			}
			switch m := m.(type) {
			case *protocol.Error:
				limited = limited || m.Code == protocol.CodeRateLimited
			case *protocol.Pong:
				if m.ID == "flood" {
					pongs++
				} else {
					answered = true
				}
			}
		case <-retry.C:
			data, _ := protocol.Encode(&protocol.Ping{ID: "after"})
			if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatalf("no pong for a ping after the flood; %d pongs so far, limited %v", pongs, limited)
		}
	}
	if !limited {
		t.Fatalf("%d pings in a row were not rate limited", flood)
	}
	if pongs >= flood {
		t.Fatalf("%d pongs for %d pings beyond the limit", pongs, flood)
	}
	t.Logf("%d pings answered out of %d", pongs, flood)
}
