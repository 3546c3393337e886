package signaling

import (
	"fmt"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// handlePing answers a client's ping with a pong carrying its id. It is
// answered before the join too: the page's watchdog runs from the moment
// its socket opens. A ping counts against the message rate like any
// message (the read loop checks that before it gets here).
func (s *session) handlePing(p *protocol.Ping) {
	if len(p.ID) > protocol.MaxPingIDLen {
		s.sendError(protocol.CodeBadMessage, fmt.Sprintf("ping id is %d bytes; at most %d", len(p.ID), protocol.MaxPingIDLen), protocol.TypePing)
		return
	}
	s.send(&protocol.Pong{ID: p.ID})
}
