package signaling

import (
	"errors"
	"io"
	"time"

	"github.com/gorilla/websocket"
)

// Transport carries one client's messages to a session and back: the
// client's own WebSocket, or in cluster mode a relay link from the node the
// client reached (package node). A session has one reader (Read) and one
// writer (Write, CloseWith) at a time; Ping and Interrupt may run beside
// them.
type Transport interface {
	// Read returns the next message and whether it is text. A message
	// longer than limit is read through and dropped: ErrTooLarge, and the
	// transport stays usable.
	Read(limit int) (text bool, data []byte, err error)
	// SetReadDeadline bounds Reads (the join deadline, then the silence
	// deadline). A relay may ignore it: its edge node keeps the client's
	// deadlines and closes the link when the client is gone.
	SetReadDeadline(t time.Time) error
	// SetPongHandler is called from Read when the client answers a ping.
	SetPongHandler(func())
	Ping(deadline time.Time) error
	Write(data []byte, deadline time.Time) error
	// CloseWith sends a close frame with the code and reason, then closes.
	CloseWith(code int, reason string, deadline time.Time)
	// Interrupt makes a Read in progress return at once (the client is
	// being dropped); the writer may still deliver the reason.
	Interrupt()
	// Close closes at once; it ends a Write in progress.
	Close() error
}

// ErrTooLarge is a message longer than the session's limit; it was dropped.
var ErrTooLarge = errors.New("message too large")

// wsTransport is a client's own WebSocket.
type wsTransport struct{ c *websocket.Conn }

// NewWebSocketTransport wraps an upgraded WebSocket.
func NewWebSocketTransport(c *websocket.Conn) Transport { return wsTransport{c} }

// Read keeps at most limit bytes: a longer message is read to its end and
// thrown away, so that it costs no memory and the connection carries on.
func (t wsTransport) Read(limit int) (bool, []byte, error) {
	kind, r, err := t.c.NextReader()
	if err != nil {
		return false, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return false, nil, err
	}
	if len(data) > limit {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return false, nil, err
		}
		return kind == websocket.TextMessage, nil, ErrTooLarge
	}
	return kind == websocket.TextMessage, data, nil
}

func (t wsTransport) SetReadDeadline(d time.Time) error { return t.c.SetReadDeadline(d) }

func (t wsTransport) SetPongHandler(f func()) {
	t.c.SetPongHandler(func(string) error { f(); return nil })
}

func (t wsTransport) Ping(deadline time.Time) error {
	return t.c.WriteControl(websocket.PingMessage, nil, deadline)
}

func (t wsTransport) Write(data []byte, deadline time.Time) error {
	_ = t.c.SetWriteDeadline(deadline)
	return t.c.WriteMessage(websocket.TextMessage, data)
}

func (t wsTransport) CloseWith(code int, reason string, deadline time.Time) {
	_ = t.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
	t.c.Close()
}

func (t wsTransport) Interrupt() { _ = t.c.UnderlyingConn().SetReadDeadline(time.Now()) }

func (t wsTransport) Close() error { return t.c.Close() }

// IsClientClose reports whether a Read error is the client closing
// normally (nothing worth logging).
func isClientClose(err error) bool {
	return websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway)
}
