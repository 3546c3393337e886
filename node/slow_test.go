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

	"github.com/huddle-rtc/huddle/internal/metricstest"
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
	sent := chatUntilGone(t, senders, reader, js.Participant.ID, func(int) {})
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

// chatUntilGone has the senders take turns sending 2 KB chats, each
// followed by after(i), until the reader sees the stalled participant go
// offline; every chat must reach the reader meanwhile. It returns how many
// chats were sent, and fails if 150 per sender (within the rate limit's
// burst) were not enough.
func chatUntilGone(t *testing.T, senders []*wsClient, reader *wsClient, stalledID string, after func(i int)) int {
	t.Helper()
	text := strings.Repeat("chat ", 400)
	gone := false
	sent := 0
	for sent < len(senders)*150 && !gone {
		senders[sent%len(senders)].sendMsg(&protocol.Chat{ClientID: fmt.Sprint(sent), Text: text})
		after(sent)
		want := fmt.Sprint(sent)
		reader.waitFor(func(m any) bool {
			if p, ok := m.(*protocol.PresenceChanged); ok && p.ParticipantID == stalledID && p.State == protocol.PresenceOffline {
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
	return sent
}

// A client that stops reading loses ephemeral messages (typing) before it
// is given up on, and each one it loses is counted in
// huddle_signaling_messages_dropped_total. Typists send "stopped typing"
// (not throttled) between the chats, so the stalled client's queue holds
// typing when the chats fill it: the queue must drop those first, and
// only a queue of reliable messages overflows.
func TestStalledClientDropsTypingFirstAndCountsIt(t *testing.T) {
	s := startTestServer(t, Config{Signaling: signaling.Config{SendQueueLen: 64}})
	stalled := dialSmallWindow(t, s)
	js := stalled.joinAs(s, "stalled", "r")
	reader := dialWS(t, s)
	reader.joinAs(s, "reader", "r")
	// Each client sends at most 150 messages: within the burst of the
	// per-connection rate limit, so none is refused.
	senders, typists := make([]*wsClient, 6), make([]*wsClient, 6)
	for i := range senders {
		senders[i] = dialWS(t, s)
		senders[i].joinAs(s, fmt.Sprint("sender-", i), "r")
		typists[i] = dialWS(t, s)
		typists[i].joinAs(s, fmt.Sprint("typist-", i), "r")
	}
	if n := metricstest.Scrape(t, s.URL())[`huddle_signaling_messages_dropped_total{type="typing"}`]; n != 0 {
		t.Fatalf("%v typing messages dropped before anyone stalled", n)
	}
	sent := chatUntilGone(t, senders, reader, js.Participant.ID, func(i int) {
		typists[i%len(typists)].sendMsg(&protocol.Typing{Typing: false})
	})
	n := metricstest.Scrape(t, s.URL())[`huddle_signaling_messages_dropped_total{type="typing"}`]
	t.Logf("stalled participant dropped after %d chats; %v typing messages dropped for it", sent, n)
	if n <= 0 {
		t.Errorf("huddle_signaling_messages_dropped_total{type=\"typing\"} = %v after a stalled client's queue overflowed with typing in it", n)
	}
}
