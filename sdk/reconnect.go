package sdk

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Reconnect replaces the session's connections. It first tries to resume:
// a new WebSocket presents the session id and the last room event seen,
// and the server keeps the participant (same id, tracks and documents),
// replays the missed events and restarts ICE on both PeerConnections. When
// the server cannot resume (grace period over, server restarted) or the
// PeerConnections have failed, it rejoins cleanly: it closes the WebSocket
// and both PeerConnections, joins again with the same token (so the same
// identity; the server gives a new participant id), builds new
// PeerConnections and data channels, re-publishes the local tracks, then
// re-opens every open document from its last revision and resubmits the
// edits the server has not acknowledged (with their original client op
// ids, so none is applied twice). It is called automatically when the
// signaling connection drops, unless Options.NoAutoReconnect is set.
// Do not call it from an Options callback (those run on the read loop it
// waits for).
func (r *Room) Reconnect(ctx context.Context) error {
	_, err := r.reconnect(ctx, 0, false)
	return err
}

// reconnect replaces the connections; with onlyGen it does so only if
// connection generation gen is still the current one (a drop noticed twice,
// by the WebSocket and by the PeerConnection, reconnects once).
func (r *Room) reconnect(ctx context.Context, gen uint64, onlyGen bool) (skipped bool, err error) {
	r.reconnMu.Lock()
	defer r.reconnMu.Unlock()
	if r.ctx.Err() != nil {
		return false, fmt.Errorf("reconnect: %w", context.Cause(r.ctx))
	}
	r.mu.Lock()
	if onlyGen && gen != r.gen {
		r.mu.Unlock()
		return true, nil
	}
	r.gen++
	gen = r.gen
	oldConn, oldPub, oldSub, oldDone := r.conn, r.pub, r.sub, r.loopDone
	join := &protocol.Join{Version: protocol.Version, Token: r.token}
	if canResume(oldPub, oldSub) {
		join.SessionID, join.LastSeq = r.sessionID, r.lastSeq
	}
	r.mu.Unlock()

	_ = oldConn.abort()
	select {
	case <-oldDone:
	case <-ctx.Done():
		return false, fmt.Errorf("reconnect: %w", ctx.Err())
	}
	conn, joined, err := dialJoin(ctx, r.url, join)
	if err != nil {
		return false, fmt.Errorf("reconnect: %w", err) // the PeerConnections stay for the next try
	}
	if joined.Resumed {
		return false, r.resumeOn(conn, joined, gen)
	}
	// A clean rejoin: new participant, new PeerConnections.
	r.docs.linkDown(r.docs.generation())
	if oldPub != nil {
		_ = oldPub.Close()
	}
	if oldSub != nil {
		_ = oldSub.Close()
	}
	done := make(chan struct{})
	r.mu.Lock()
	if r.ctx.Err() != nil {
		r.mu.Unlock()
		conn.close()
		return false, fmt.Errorf("reconnect: %w", context.Cause(r.ctx))
	}
	r.conn, r.loopDone = conn, done
	r.pubAwaiting, r.pubAgain, r.pubRestart = false, false, false
	r.pubNew, r.pubOut, r.pubOutRestart = nil, nil, false
	r.subPending, r.pubPending = nil, nil
	tracks := append([]published(nil), r.tracks...)
	r.mu.Unlock()
	r.resetFrom(joined)

	if err := r.setupPeerConnections(conn, joined.ICEServers); err != nil {
		conn.close()
		close(done)
		return false, fmt.Errorf("reconnect: %w", err)
	}
	r.mu.Lock()
	pub := r.pub
	r.mu.Unlock()
	for _, t := range tracks {
		sender, err := pub.AddTrack(t.trackLocal())
		if err != nil {
			r.log.Warn("reconnect: re-publish", "track", t.trackLocal().ID(), "err", err)
			continue
		}
		if e, ok := t.(encodings); ok {
			if err := e.addEncodings(pub, sender); err != nil {
				r.log.Warn("reconnect: re-publish", "track", t.trackLocal().ID(), "err", err)
			}
		}
		r.mu.Lock()
		r.pubNew = append(r.pubNew, offered{t, sender})
		r.mu.Unlock()
		go t.readRTCP(sender)
	}
	go r.readLoop(conn, gen, done)
	r.negotiate()
	r.chat.resend(r)
	r.log.Info("reconnected", "participant", joined.Participant.ID)
	if r.opts.OnReconnect != nil {
		r.opts.OnReconnect(joined.Participant)
	}
	return false, nil
}

// autoReconnect retries Reconnect with backoff after an unexpected drop,
// for up to Options.ReconnectTimeout; then the session ends. After an
// overload close (CloseOverloaded) the first attempt waits overloadBackoff's
// base, jittered, and later attempts back off from there. When the
// room moved (cluster mode: its node died, close code CloseRoomMoved),
// every participant of the room reconnects at once, so the first attempt
// waits a uniform random part of protocol.ReconnectSpread; later attempts
// wait with exponential backoff and full jitter.
func (r *Room) autoReconnect(cause error, gen uint64) {
	limit := r.opts.ReconnectTimeout
	if limit <= 0 {
		limit = 30 * time.Second
	}
	deadline := time.Now().Add(limit)
	backoff := 200 * time.Millisecond
	switch {
	case overloaded(cause):
		base := r.overload.next(time.Now())
		wait := overloadJitter(base)
		r.log.Info("relay overloaded; reconnecting", "in", wait, "backoff", base)
		if !r.sleep(wait) {
			return
		}
		backoff = min(base, 5*time.Second)
	case roomMoved(cause):
		wait := rand.N(protocol.ReconnectSpread)
		r.log.Info("room moved; reconnecting", "in", wait)
		if !r.sleep(wait) {
			return
		}
	}
	for {
		ctx, cancel := context.WithDeadline(r.ctx, deadline)
		skipped, err := r.reconnect(ctx, gen, true)
		cancel()
		if skipped || err == nil || r.ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		gen = r.gen // the failed attempt's generation, which nothing else reconnects
		r.mu.Unlock()
		if !time.Now().Before(deadline) {
			r.shutdown(fmt.Errorf("%w; reconnecting failed: %v", cause, err))
			return
		}
		// Exponential backoff with full jitter, so that the clients of a
		// restarted server do not all come back in the same instant.
		wait := rand.N(backoff + 1)
		r.log.Info("reconnect failed; retrying", "err", err, "in", wait)
		if !r.sleep(wait) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// sleep waits, and reports false if the session ended meanwhile.
func (r *Room) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// overloaded: the server closed with CloseOverloaded.
func overloaded(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) && ce.Code == protocol.CloseOverloaded
}

// overloadBackoff remembers overload closes across reconnects, so that a
// client that reconnects into the same overload waits longer each time:
// the wait's base starts at protocol.OverloadWait and doubles (up to
// overloadCap) for every overload close within overloadMemory of the last.
type overloadBackoff struct {
	mu   sync.Mutex
	base time.Duration
	last time.Time
}

const (
	overloadCap    = 16 * time.Second
	overloadMemory = time.Minute
)

// next records an overload close at now and returns the wait's base.
func (o *overloadBackoff) next(now time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.base == 0 || now.Sub(o.last) > overloadMemory {
		o.base = protocol.OverloadWait
	} else {
		o.base = min(2*o.base, overloadCap)
	}
	o.last = now
	return o.base
}

// overloadJitter draws the wait from the upper half of base: never at
// once (that meets the same overload), spread so clients do not return
// together.
func overloadJitter(base time.Duration) time.Duration {
	return base/2 + rand.N(base/2+1)
}

// roomMoved: the server closed with CloseRoomMoved.
func roomMoved(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) && ce.Code == protocol.CloseRoomMoved
}

// DropConnection cuts the session's connections abruptly, as a network
// failure would: the WebSocket is closed without a close frame and both
// PeerConnections are closed, so messages in flight are lost. Unless
// Options.NoAutoReconnect is set, the room then reconnects by itself. For
// tests.
func (r *Room) DropConnection() {
	r.mu.Lock()
	conn, pub, sub := r.conn, r.pub, r.sub
	r.mu.Unlock()
	r.docs.linkDown(r.docs.generation())
	_ = pub.Close()
	_ = sub.Close()
	_ = conn.abort()
}
