package node

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// dialSmallWindow opens a WebSocket whose receive buffer is tiny, so that
// a client that stops reading backs up into the server quickly.
func dialSmallWindow(t *testing.T, s *Node) *wsClient {
	t.Helper()
	nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nd.DialContext(ctx, network, addr)
	}}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(s.URL(), "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &wsClient{t: t, ws: ws}
}

// One subscriber that stops reading does not delay chat to the others:
// each message reaches a reading participant while the stalled one is
// stalled; then the stalled one is disconnected, and when it reads again
// it finds the reason (too_slow) and a close frame.
func TestStalledSubscriberDoesNotDelayChat(t *testing.T) {
	// A short queue makes the test quick; the policy is what is tested.
	s := startTestServer(t, Config{Signaling: signaling.Config{SendQueueLen: 64}})
	stalled := dialSmallWindow(t, s)
	js := stalled.joinAs(s, "stalled", "r")
	reader := dialWS(t, s)
	reader.joinAs(s, "reader", "r")
	senders := make([]*wsClient, 6)
	for i := range senders {
		senders[i] = dialWS(t, s)
		senders[i].joinAs(s, fmt.Sprint("sender-", i), "r")
	}
	// From here the stalled client reads nothing.
	text := strings.Repeat("chat ", 400)
	gone := false
	sent := 0
	for sent < 6*150 && !gone {
		senders[sent%len(senders)].sendMsg(&protocol.Chat{ClientID: fmt.Sprint(sent), Text: text})
		want := fmt.Sprint(sent)
		reader.waitFor(func(m any) bool {
			if p, ok := m.(*protocol.PresenceChanged); ok && p.ParticipantID == js.Participant.ID && p.State == protocol.PresenceOffline {
				gone = true
			}
			c, ok := m.(*protocol.ChatMessage)
			return ok && c.ClientID == want
		})
		sent++
	}
	if !gone {
		t.Fatalf("the stalled participant was never disconnected after %d chats", sent)
	}
	t.Logf("stalled participant dropped after %d chats; every chat reached the reader meanwhile", sent)
	// Reading again, the stalled client finds why.
	_ = stalled.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	var reason *protocol.Error
	for {
		_, data, err := stalled.ws.ReadMessage()
		if err != nil {
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != protocol.ClosePolicy || !strings.Contains(ce.Text, "too_slow") {
				t.Fatalf("stalled connection ended with %v, want a close frame with too_slow", err)
			}
			break
		}
		if m, _ := protocol.Decode(data); m != nil {
			if e, ok := m.(*protocol.Error); ok {
				reason = e
			}
		}
	}
	if reason == nil || reason.Code != protocol.CodeTooSlow {
		t.Fatalf("stalled client got error %+v before the close, want too_slow", reason)
	}
}
