package sdk

import (
	"context"
	"fmt"
	"net/url"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// dialJoin opens the WebSocket and sends join (with resume fields when
// resuming); it returns once the server has accepted the join. Room events
// that follow joined (a resume's replay) are left for the read loop.
func dialJoin(ctx context.Context, u *url.URL, join *protocol.Join) (*signalConn, *protocol.Joined, error) {
	conn, err := dial(ctx, u)
	if err != nil {
		return nil, nil, fmt.Errorf("join: %w (is a Huddle server running at %s? `huddle serve` starts one)", err, u.Host)
	}
	if err := conn.send(join); err != nil {
		conn.close()
		return nil, nil, fmt.Errorf("join: %w", err)
	}
	// The server answers joined or error; bound the wait by ctx.
	type result struct {
		m   any
		err error
	}
	first := make(chan result, 1)
	go func() {
		m, _, err := conn.read()
		first <- result{m, err}
	}()
	select {
	case <-ctx.Done():
		conn.close()
		<-first
		return nil, nil, fmt.Errorf("join: %w", ctx.Err())
	case r := <-first:
		if r.err != nil {
			conn.close()
			return nil, nil, fmt.Errorf("join: %w", r.err)
		}
		switch m := r.m.(type) {
		case *protocol.Joined:
			return conn, m, nil
		case *protocol.Error:
			conn.close()
			return nil, nil, fmt.Errorf("join refused: %w%s", m, joinHint(m.Code))
		default:
			conn.close()
			return nil, nil, fmt.Errorf("join: unexpected %s before joined", protocol.TypeOf(m))
		}
	}
}

// resetFrom takes the room as a joined (or a resume's snapshot) describes
// it, and delivers its chat history.
func (r *Room) resetFrom(joined *protocol.Joined) {
	r.mu.Lock()
	r.self, r.grants = joined.Participant, joined.Grants
	r.sessionID, r.lastSeq = joined.SessionID, joined.Seq
	r.participants = map[string]protocol.Participant{}
	for _, p := range joined.Participants {
		r.participants[p.ID] = p
	}
	r.mu.Unlock()
	for _, m := range joined.Chat {
		r.chat.deliver(r, m)
	}
}

// canResume: the PeerConnections are worth keeping (a failed or closed
// one needs a clean rejoin).
func canResume(pcs ...*webrtc.PeerConnection) bool {
	for _, pc := range pcs {
		if pc == nil {
			return false
		}
		switch pc.ConnectionState() {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			return false
		}
	}
	return true
}

// resumeOn continues the session on a new connection that the server
// accepted as a resume: same participant, same PeerConnections (ICE
// restarts on both), same data channels and documents. The missed events
// follow joined on conn; a snapshot replaces the room's view instead.
func (r *Room) resumeOn(conn *signalConn, joined *protocol.Joined, gen uint64) error {
	done := make(chan struct{})
	r.mu.Lock()
	if r.ctx.Err() != nil {
		r.mu.Unlock()
		conn.close()
		return fmt.Errorf("resume: %w", context.Cause(r.ctx))
	}
	r.conn, r.loopDone = conn, done
	r.mu.Unlock()
	if joined.Replayed {
		r.mu.Lock()
		r.self, r.grants, r.sessionID, r.lastSeq = joined.Participant, joined.Grants, joined.SessionID, joined.Seq
		r.mu.Unlock()
	} else {
		r.resetFrom(joined)
	}
	go r.readLoop(conn, gen, done)

	r.mu.Lock()
	r.pubRestart = true
	if r.pubAwaiting {
		// The answer may have been lost with the old connection: offer
		// the same description again; the restart follows its answer.
		if ld := r.pub.LocalDescription(); ld != nil {
			_ = r.sendOffer(conn, ld.SDP)
		}
		r.pubAgain = true
	} else {
		r.offerLocked()
	}
	self := r.self
	r.mu.Unlock()
	r.chat.resend(r)
	r.log.Info("resumed", "participant", self.ID, "replayed", joined.Replayed)
	if r.opts.OnReconnect != nil {
		r.opts.OnReconnect(self)
	}
	return nil
}

// DropSignaling cuts only the WebSocket, without a close frame, as a
// network blip would; the media keeps its PeerConnections. Unless
// Options.NoAutoReconnect is set, the room resumes by itself. For tests.
func (r *Room) DropSignaling() {
	r.mu.Lock()
	conn := r.conn
	r.mu.Unlock()
	_ = conn.abort()
}
