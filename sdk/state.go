package sdk

import (
	"context"
	"errors"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// What a Room tells about itself (read under its lock).

// Self is this bot as the room sees it (its id changes on a reconnect).
func (r *Room) Self() protocol.Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.self
}

func (r *Room) identity() string { return r.Self().Identity }
func (r *Room) selfID() string   { return r.Self().ID }

// Grants are what this bot may do.
func (r *Room) Grants() protocol.Grants {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.grants
}

// Docs is the room's shared documents.
func (r *Room) Docs() *Docs { return r.docs }

// Participants lists everyone else in the room, with their tracks.
func (r *Room) Participants() []protocol.Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]protocol.Participant, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p)
	}
	return out
}

// PublisherPC and SubscriberPC expose the PeerConnections, for stats and
// tests. A reconnect replaces them.
func (r *Room) PublisherPC() *webrtc.PeerConnection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pub
}

func (r *Room) SubscriberPC() *webrtc.PeerConnection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sub
}

// DataChannels returns the collab (reliable) and cursors (lossy) channels.
// A reconnect replaces them.
func (r *Room) DataChannels() (collab, cursors *webrtc.DataChannel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.collab, r.cursors
}

// Done is closed when the session has ended; Err tells why.
func (r *Room) Done() <-chan struct{} { return r.ctx.Done() }

// Err is why the session ended, or nil while it runs.
func (r *Room) Err() error {
	if err := context.Cause(r.ctx); !errors.Is(err, errLeft) {
		return err
	}
	return nil
}

// finalClose: the server ended the session on purpose (leave, replaced,
// bad token, room full); other closes (restart, too slow, network) are
// reconnected.
func finalClose(err error) bool {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.Code {
	case websocket.CloseNormalClosure:
		return true
	case websocket.ClosePolicyViolation:
		return !strings.HasPrefix(ce.Text, protocol.CodeTooSlow)
	}
	return false
}
