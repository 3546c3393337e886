package node

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/cluster"
	"github.com/huddle-rtc/huddle/signaling"
)

// linkTransport runs a session over a relay link (cluster mode): the
// client's WebSocket is on the edge node, which keeps its pings, deadlines
// and limits, so here deadlines and pings are the edge's business.
type linkTransport struct {
	l           *cluster.Link
	interrupted chan struct{}
	once        sync.Once
}

func newLinkTransport(l *cluster.Link) *linkTransport {
	return &linkTransport{l: l, interrupted: make(chan struct{})}
}

var errInterrupted = errors.New("relay read interrupted")

func (t *linkTransport) Read(limit int) (bool, []byte, error) {
	select {
	case f, ok := <-t.l.Frames():
		if !ok {
			code, reason := t.l.CloseReason()
			return false, nil, fmt.Errorf("relay link from node %s closed: %d %s", t.l.Peer(), code, reason)
		}
		if len(f) > limit {
			return true, nil, signaling.ErrTooLarge
		}
		return true, f, nil
	case <-t.interrupted:
		return false, nil, errInterrupted
	}
}

func (t *linkTransport) SetReadDeadline(time.Time) error { return nil }
func (t *linkTransport) SetPongHandler(func())           {}
func (t *linkTransport) Ping(time.Time) error            { return nil }

func (t *linkTransport) Write(data []byte, _ time.Time) error { return t.l.Send(data) }

func (t *linkTransport) CloseWith(code int, reason string, _ time.Time) { t.l.Close(code, reason) }

func (t *linkTransport) Interrupt() { t.once.Do(func() { close(t.interrupted) }) }

func (t *linkTransport) Close() error {
	t.l.Close(1001, "session ended")
	return nil
}
