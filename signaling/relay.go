package signaling

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// In cluster mode a room lives on one node, and a client may reach any
// node. The node it reached (the edge) keeps the client's WebSocket, its
// pings and limits, and relays every message to the room's owner, which
// runs the real session over the relay (Serve with Client.Relayed). This
// file is the edge's side.

// Router places rooms (the node's cluster membership).
type Router interface {
	// Route returns a nil Relay when this node serves the room; then done
	// must be called once the local join has finished (the room exists,
	// or the join failed), so that the room is not released in between.
	// Otherwise it returns a relay to the owner, opened with the join.
	Route(ctx context.Context, room string, join []byte) (relay Relay, done func(), err error)
	// Joined is called after every join this node served itself (routed
	// here or relayed to it) has run, before Route's done: the node may
	// have lost the room while the join ran, after the room's
	// participants were moved, and then must move this one too.
	Joined(room string)
}

// Relay carries one client's messages to the room's owner node and back.
type Relay interface {
	Send(frame []byte) error
	// Frames are the owner's messages for the client, in order; the
	// channel is closed when the relay ends.
	Frames() <-chan []byte
	// CloseReason is the owner's close code and reason (or the relay's
	// own, when the owner's node is gone).
	CloseReason() (code int, reason string)
	Close(code int, reason string)
}

// CloseNotOwner is a relay close code between nodes, never sent to a
// client: the node dialed does not own the room (it moved since the edge
// looked). The edge places the room again, once.
const CloseNotOwner = 4100

// relayState is an edge session's relay; the read loop sends through it
// and the pump replaces it on a retry.
type relayState struct {
	mu    sync.Mutex
	relay Relay
	join  []byte        // the client's join, for a retry
	done  chan struct{} // closed when the pump has ended
}

func (r *relayState) get() Relay {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.relay
}

// route asks the router where the room lives. It reports false when this
// node serves the room (the caller joins locally and then calls done);
// true when the session now relays, or has been ended with a reason.
func (s *session) route(room string, j *protocol.Join) (relayed bool, done func()) {
	join, err := protocol.Encode(j)
	if err != nil {
		s.endWith(protocol.CodeInternal, err.Error(), protocol.TypeJoin, protocol.ClosePolicy)
		return true, nil
	}
	relay, done, err := s.srv.cfg.Router.Route(s.ctx, room, join)
	if err != nil {
		s.log.Warn("cannot route a join", "room", room, "err", err)
		closeCode := protocol.CloseRoomMoved
		if overloaded(err) {
			closeCode = protocol.CloseOverloaded
		}
		s.endWith(protocol.CodeUnavailable, fmt.Sprintf("the node of room %q cannot be reached now (%v); reconnect", room, err), protocol.TypeJoin, closeCode)
		return true, nil
	}
	if relay == nil {
		return false, done
	}
	s.relay = &relayState{relay: relay, join: join, done: make(chan struct{})}
	if !s.srv.trackRelay(s, true) {
		relay.Close(protocol.CloseGoingAway, "edge node shutting down")
		s.finish(closeFrame{protocol.CloseServiceRestart, "server restarting: reconnect"})
		close(s.relay.done)
		return true, nil
	}
	go s.pump(room)
	return true, nil
}

// forward sends a client's message to the owner. A relay that refuses it
// has ended; the pump reports why.
func (s *session) forward(data []byte) {
	if err := s.relay.get().Send(data); err != nil {
		s.log.Debug("relay refused a message", "err", err)
	}
}

// pump queues the owner's messages for the client until the relay ends,
// then closes the client's connection with the owner's close code, or
// with CloseRoomMoved when the owner's node is gone. It is the session's:
// serve waits for it.
func (s *session) pump(room string) {
	defer close(s.relay.done)
	defer s.srv.trackRelay(s, false)
	relay, retried := s.relay.get(), false
	for {
		got := false
		for f := range relay.Frames() {
			got = true
			s.sendRaw(f, false)
		}
		if s.ctx.Err() != nil || s.q.closing() {
			return // the session is ending anyway
		}
		code, reason := relay.CloseReason()
		if code == CloseNotOwner && !got && !retried {
			retried = true
			next, done, err := s.srv.cfg.Router.Route(s.ctx, room, s.relay.join)
			if done != nil {
				done() // this node owns it now: the client reconnects to it
			}
			if err == nil && next != nil {
				s.relay.mu.Lock()
				s.relay.relay = next
				s.relay.mu.Unlock()
				relay = next
				continue
			}
		}
		if o, ok := relay.(overloader); ok && o.Overloaded() {
			s.log.Warn("relay overloaded: client told to reconnect later", "room", room, "code", code, "reason", reason)
			s.finish(closeFrame{protocol.CloseOverloaded, "overloaded: reconnect later"})
		} else {
			s.finish(clientClose(code, reason))
		}
		s.conn.Interrupt()
		return
	}
}

// overloader is what a Relay (or the error of a Route) may add: whether it
// ended or was refused for load (a full queue on the way, a link limit),
// which the client hears as CloseOverloaded rather than a moved room.
type overloader interface{ Overloaded() bool }

func overloaded(err error) bool {
	var o overloader
	return errors.As(err, &o) && o.Overloaded()
}

// clientClose is the close frame a client gets when its relay ended: the
// owner's own close (leave, replaced, a refused join, a restart, a moved
// room) as it was, anything else (the owner's node died, the relay lost a
// message) as "room moved: reconnect".
func clientClose(code int, reason string) closeFrame {
	switch code {
	case protocol.CloseNormal, protocol.CloseGoingAway, protocol.ClosePolicy, protocol.CloseServiceRestart, protocol.CloseRoomMoved, protocol.CloseOverloaded:
		return closeFrame{code, reason}
	}
	return closeFrame{protocol.CloseRoomMoved, "room moved: reconnect"}
}

// endRelay closes an edge session's relay when the session ends and waits
// for its pump.
func (s *session) endRelay() {
	if s.relay == nil {
		return
	}
	s.relay.get().Close(protocol.CloseGoingAway, "client gone")
	<-s.relay.done
}

// trackRelay adds (or removes) an edge session to the ones Shutdown tells
// to reconnect; adding fails once the server is draining.
func (s *Server) trackRelay(sess *session, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.relays, sess)
		return true
	}
	if s.draining.Load() {
		return false
	}
	s.relays[sess] = struct{}{}
	return true
}

// MoveRoom ends a room this node no longer owns (cluster mode: its
// ownership was lost or taken over). Every participant is told "room
// moved: reconnect" and leaves here; the reconnect lands on the room's
// node, through any node.
func (s *Server) MoveRoom(name string) {
	r := s.existingRoom(name)
	if r == nil {
		return
	}
	n := s.endRoom(r, protocol.CodeRoomMoved, "the room moved to another node; reconnect", protocol.CloseRoomMoved)
	s.log.Warn("room lost to another node: participants told to reconnect", "room", name, "participants", n)
}

// HasRoom reports whether the room has participants on this node.
func (s *Server) HasRoom(name string) bool { return s.existingRoom(name) != nil }
