package signaling

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"golang.org/x/time/rate"

	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

const (
	// MaxMessageSize bounds one incoming message; SDPs are a few KB, chat
	// at most 16 KB.
	MaxMessageSize = 256 << 10
	writeTimeout   = 10 * time.Second
	// socketSendBuffer is each WebSocket's kernel send buffer.
	socketSendBuffer = 64 << 10
)

// session is one WebSocket connection. Its read loop is the only goroutine
// that handles the client's messages, so they are handled in order; its
// write loop is the only writer to the socket. After the join it belongs
// to a member, which may outlive it (resume).
type session struct {
	srv   *Server
	conn  Transport
	log   *slog.Logger
	host  string // the Host the client reached us at, for TURN URLs
	q     *sendQueue
	ctx   context.Context
	end   context.CancelFunc
	limit *rate.Limiter

	ping      *time.Timer
	member    *member      // set by the join; read only by the read loop
	left      bool         // the client sent leave
	lastHeard atomic.Int64 // Unix ns of the last message or pong
	limitedAt time.Time    // last rate_limited error, to send one per second
	// The rate_limited refusals of dropped offers, answers and chat
	// messages, by type, encoded once (ratelimit.go).
	droppedErrs map[string][]byte

	first []byte // a message read before the session began (cluster relays)
	// relayed: the client reached another node, which relays it here (we
	// own the room). relay: we are that other node (relay.go).
	relayed bool
	relay   *relayState

	meetingBudget meetingBudget // read loop only (meeting.go)
	renderWindow  time.Time     // render-size budget, read loop only (adaptive.go)
	renderUsed    int
}

// HandleWebSocket is the /ws endpoint: it checks the request, upgrades it
// and runs the client's session.
func (s *Server) HandleWebSocket(w http.ResponseWriter, r *http.Request) {
	if s.ctx.Err() != nil || s.draining.Load() {
		httpError(w, http.StatusServiceUnavailable, "server is shutting down")
		return
	}
	if err := s.CheckHost(r); err != nil {
		httpError(w, http.StatusForbidden, err.Error())
		return
	}
	if !s.joins.allow(remoteIP(r)) {
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusTooManyRequests, "too many connections from this address; retry in a second")
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the request
	}
	// Signaling needs little kernel buffer; a fixed one bounds what a
	// connection that stops reading can hold, so that the send queue (and
	// its policy) sees a stalled client soon.
	if tc, ok := conn.UnderlyingConn().(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(socketSendBuffer)
	}
	s.Serve(NewWebSocketTransport(conn), Client{Remote: r.RemoteAddr, Host: r.Host})
}

// Client says where a transport's client came from.
type Client struct {
	Remote string // its address, for logs
	Host   string // the Host it reached, for TURN URLs
	// First is a message read before the session began (a relayed join).
	First []byte
	// Relayed: an edge node relays this client (cluster mode); the
	// session is served here and never routed again.
	Relayed bool
}

// Serve runs a session over a transport in the background until the
// client leaves or the server shuts down. The transport is the session's
// from here; the server waits for the session at shutdown.
func (s *Server) Serve(t Transport, c Client) {
	ctx, cancel := context.WithCancel(s.ctx)
	sess := &session{
		srv:     s,
		conn:    t,
		log:     s.log.With("remote", c.Remote),
		host:    c.Host,
		ctx:     ctx,
		end:     cancel,
		limit:   rate.NewLimiter(rate.Limit(s.cfg.MessageRate), s.cfg.MessageBurst),
		first:   c.First,
		relayed: c.Relayed,
	}
	sess.q = newSendQueue(s.cfg.SendQueueLen, s.cfg.SendQueueBytes, sess.startWriter, func(typ string) { s.metrics.dropped.WithLabelValues(typ).Inc() })
	sess.heard()
	// The check and the Add are one step under s.mu: Shutdown cancels the
	// server's context and then takes s.mu before it waits, so a session
	// either counts before that Wait or sees the cancel and is refused.
	// (A hijacked WebSocket handler can still be running after the HTTP
	// server has shut down.) Shutdown finds the session in s.open.
	s.mu.Lock()
	if s.ctx.Err() != nil || s.draining.Load() {
		s.mu.Unlock()
		cancel()
		t.CloseWith(protocol.CloseServiceRestart, "server restarting: reconnect", time.Now().Add(writeTimeout))
		return
	}
	s.wg.Add(1)
	s.open[sess] = struct{}{}
	s.mu.Unlock()
	// The session runs on a goroutine of its own and the handler returns:
	// the HTTP server's connection goroutine, its buffers and the request
	// are then freed, which is most of an idle connection's cost.
	go func() {
		defer s.wg.Done()
		sess.serve()
		s.mu.Lock()
		delete(s.open, sess)
		s.mu.Unlock()
	}()
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *session) heard() { s.lastHeard.Store(time.Now().UnixNano()) }

func (s *session) serve() {
	s.ping = time.AfterFunc(s.srv.cfg.PingInterval, s.sendPing)
	s.readLoop()
	s.endRelay()
	if m := s.member; m != nil {
		if s.left {
			s.srv.removeMember(m)
		} else {
			m.room.disconnected(m, s, time.Unix(0, s.lastHeard.Load()))
		}
	}
	// Let a final message and close frame (leave, join timeout, too
	// slow, shutdown) go out, within the write timeout.
	if s.q.closing() {
		if done := s.q.writerDone(); done != nil {
			select {
			case <-done:
			case <-time.After(writeTimeout):
			}
		}
	}
	s.end()
	s.ping.Stop()
	s.q.seal()
	s.conn.Close() // ends a write in progress
	if done := s.q.writerDone(); done != nil {
		<-done
	}
}

// sendPing pings the client from a timer, so that an idle connection needs
// no goroutine of its own for it. WriteControl may run beside the writer.
func (s *session) sendPing() {
	if s.ctx.Err() != nil {
		return
	}
	if err := s.conn.Ping(time.Now().Add(writeTimeout)); err != nil {
		s.end()
		return
	}
	s.ping.Reset(s.srv.cfg.PingInterval)
}

// startWriter runs a writer goroutine; the queue calls it (under its lock)
// when work arrives and none runs.
func (s *session) startWriter(done chan struct{}) {
	go func() {
		defer close(done)
		s.writeLoop()
	}()
}

func (s *session) readLoop() {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.JoinTimeout))
	s.conn.SetPongHandler(func() {
		s.heard()
		if s.joined() { // before the join only the join deadline counts
			_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.PongTimeout))
		}
	})
	for {
		text, data, err := s.readMessage()
		if errors.Is(err, ErrTooLarge) {
			s.heard()
			s.sendError(protocol.CodeLimit, fmt.Sprintf("message longer than %d bytes; it was dropped", MaxMessageSize), "")
			continue
		}
		if err != nil {
			s.readEnded(err)
			return
		}
		s.heard()
		if !text {
			s.sendError(protocol.CodeBadMessage, "messages must be JSON text frames", "")
			continue
		}
		if !s.limit.Allow() {
			s.rateLimited(data)
			continue
		}
		s.handle(data)
		if s.joined() {
			// The join ends the join deadline; from here silence counts.
			_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.PongTimeout))
		}
		if s.ctx.Err() != nil || s.q.closing() {
			s.drain()
			return
		}
	}
}

// readMessage returns the message read before the session began, then
// the transport's, each at most MaxMessageSize bytes.
func (s *session) readMessage() (bool, []byte, error) {
	if first := s.first; first != nil {
		s.first = nil
		if len(first) > MaxMessageSize {
			return true, nil, ErrTooLarge
		}
		return true, first, nil
	}
	return s.conn.Read(MaxMessageSize)
}

// readEnded logs why the connection ended, and answers a client that
// never joined with a reason.
func (s *session) readEnded(err error) {
	var ne net.Error
	if s.member == nil && errors.As(err, &ne) && ne.Timeout() && !s.q.closing() {
		s.endWith(protocol.CodeJoinTimeout, fmt.Sprintf("no join within %s", s.srv.cfg.JoinTimeout), "", protocol.ClosePolicy)
		return
	}
	if s.ctx.Err() == nil && !s.q.closing() && !isClientClose(err) {
		s.log.Info("connection ended", "participant", s.memberID(), "err", err)
	}
}

// drain reads (and ignores) until the writer has closed the socket after
// its close frame, so the client's close reply is consumed.
func (s *session) drain() {
	_ = s.conn.SetReadDeadline(time.Now().Add(writeTimeout))
	for {
		if _, _, err := s.conn.Read(MaxMessageSize); err != nil {
			return
		}
	}
}

// joined: the join has been handled here, or is relayed to the owner.
func (s *session) joined() bool { return s.member != nil || s.relay != nil }

func (s *session) memberID() string {
	if s.member == nil {
		return ""
	}
	return s.member.id
}

// writeLoop writes until the queue is empty (then it stops; the next
// message starts another) or until the close frame is out.
func (s *session) writeLoop() {
	for {
		m, final, ok := s.q.pop()
		switch {
		case !ok:
			return
		case final != nil:
			s.conn.CloseWith(final.code, final.reason, time.Now().Add(writeTimeout))
			return
		}
		if err := s.conn.Write(m.data, time.Now().Add(writeTimeout)); err != nil {
			// The queue stays "running": nothing more is written to a
			// broken connection, and the session ends.
			s.end()
			s.conn.Close()
			return
		}
	}
}

// send queues a message for the client without ever blocking the caller,
// which may be a room broadcasting to everyone.
func (s *session) send(m any) {
	data, err := protocol.Encode(m)
	if err != nil {
		s.log.Error("encode", "err", err)
		return
	}
	s.sendRaw(data, false)
}

// sendRaw queues encoded bytes (shared, never modified). A client that
// cannot keep up with reliable messages is told too_slow and dropped; it
// may resume. An ephemeral message sent here is counted as type "other"
// when dropped; sendEphemeral names it.
func (s *session) sendRaw(data []byte, ephemeral bool) {
	s.queue(data, ephemeral, "other")
}

// sendEphemeral queues an encoded message of type typ that a slow client
// loses first (counted by type in huddle_signaling_messages_dropped_total).
func (s *session) sendEphemeral(data []byte, typ string) { s.queue(data, true, typ) }

func (s *session) queue(data []byte, ephemeral bool, typ string) {
	if s.q.push(data, ephemeral, typ) {
		return
	}
	s.log.Warn("client is not reading its messages; disconnecting", "participant", s.memberID(), "queued", s.q.len())
	s.srv.metrics.errors.WithLabelValues(protocol.CodeTooSlow).Inc()
	last, _ := protocol.Encode(&protocol.Error{Code: protocol.CodeTooSlow, Message: "you did not read your messages fast enough; resume to catch up"})
	s.q.fail(closeFrame{protocol.ClosePolicy, "too_slow: messages not read in time"}, last)
	// Unblock the read loop now, so the room sees the member go at once;
	// the writer still has the write timeout to deliver the reason.
	s.conn.Interrupt()
}

func (s *session) sendError(code, msg, ref string) {
	s.srv.metrics.errors.WithLabelValues(code).Inc()
	s.log.Info("refused client message", "participant", s.memberID(), "code", code, "ref", ref, "err", msg)
	s.send(&protocol.Error{Code: code, Message: msg, Ref: ref})
}

// endWith tells the client why, then closes the connection with a close
// frame carrying the code.
func (s *session) endWith(code, msg, ref string, closeCode int) {
	s.srv.metrics.errors.WithLabelValues(code).Inc()
	last, _ := protocol.Encode(&protocol.Error{Code: code, Message: msg, Ref: ref})
	s.q.finishWith(closeFrame{closeCode, code}, last)
}

// finish sends what is queued, then a close frame, then closes.
func (s *session) finish(f closeFrame) { s.q.finishWith(f, nil) }

func (s *session) handle(data []byte) {
	if s.relay != nil {
		s.forward(data) // the owner node decodes and answers
		return
	}
	msg, err := protocol.Decode(data)
	if err != nil {
		s.sendError(protocol.CodeBadMessage, err.Error(), "")
		return
	}
	t := protocol.TypeOf(msg)
	s.srv.metrics.messages.WithLabelValues(t).Inc()
	if p, ok := msg.(*protocol.Ping); ok {
		s.handlePing(p) // before or after the join (keepalive.go)
		return
	}
	if s.member == nil {
		j, ok := msg.(*protocol.Join)
		if !ok {
			s.sendError(protocol.CodeNotJoined, "the first message must be a join", t)
			return
		}
		s.handleJoin(j)
		return
	}
	peer := s.member.mediaPeer()
	if peer == nil && (t == protocol.TypeOffer || t == protocol.TypeAnswer || t == protocol.TypeCandidate) {
		s.sendError(protocol.CodeInternal, "media is not ready for this participant", t)
		return
	}
	switch msg := msg.(type) {
	case *protocol.Join:
		s.sendError(protocol.CodeBadMessage, "already joined", t)
	case *protocol.Offer:
		if msg.Target != protocol.TargetPublisher {
			s.sendError(protocol.CodeBadMessage, "clients offer only on the publisher PeerConnection", t)
			return
		}
		if err := peer.HandleOffer(msg.SDP, msg.Sources); err != nil {
			s.mediaError(err, t)
		}
	case *protocol.Answer:
		if msg.Target != protocol.TargetSubscriber {
			s.sendError(protocol.CodeBadMessage, "clients answer only on the subscriber PeerConnection", t)
			return
		}
		if err := peer.HandleAnswer(msg.SDP); err != nil {
			s.mediaError(err, t)
		}
	case *protocol.Candidate:
		if err := checkCandidate(msg.Candidate); err != nil {
			s.sendError(protocol.CodeBadCandidate, err.Error(), t)
			return
		}
		if err := peer.HandleCandidate(msg.Target, toWebRTC(msg.Candidate)); err != nil {
			s.mediaError(err, t)
		}
	case *protocol.Leave:
		s.left = true
		s.finish(closeFrame{protocol.CloseNormal, "left"})
	case *protocol.Chat:
		s.handleChat(msg)
	case *protocol.SetPresence:
		s.handleSetPresence(msg)
	case *protocol.Typing:
		s.handleTyping(msg)
	default:
		if !s.handleMeeting(msg) && !s.handleAdaptive(msg) {
			s.sendError(protocol.CodeBadMessage, "clients do not send "+t, t)
		}
	}
}

func (s *session) mediaError(err error, ref string) {
	switch {
	case errors.Is(err, sfu.ErrLimit):
		s.sendError(protocol.CodeLimit, err.Error(), ref)
	case errors.Is(err, sfu.ErrBadSDP):
		s.sendError(protocol.CodeBadSDP, err.Error(), ref)
	case errors.Is(err, sfu.ErrBadCandidate):
		s.sendError(protocol.CodeBadCandidate, err.Error(), ref)
	default:
		s.sendError(protocol.CodeInternal, err.Error(), ref)
	}
}

func toWebRTC(c *protocol.ICECandidate) *webrtcCandidate {
	if c == nil {
		return nil
	}
	return &webrtcCandidate{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}
}

// newID is a random id with 128 bits: ids are keys across the whole server
// (the documents hub), and session ids are secrets.
func newID(prefix string) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return prefix + hex.EncodeToString(b)
}

// checkCandidate refuses candidates far larger than real ones before they
// can be held.
func checkCandidate(c *protocol.ICECandidate) error {
	if c == nil {
		return nil
	}
	if len(c.Candidate) > 1024 || c.SDPMid != nil && len(*c.SDPMid) > 64 || c.UsernameFragment != nil && len(*c.UsernameFragment) > 256 {
		return errors.New("candidate is longer than any real one (candidate 1024 bytes, sdpMid 64, usernameFragment 256)")
	}
	if c.Candidate == "" {
		return nil // end of candidates, in the form some browsers use
	}
	// Checked now, even when it is held until the remote description, so
	// that a bad one is answered with an error rather than dropped later.
	if _, err := ice.UnmarshalCandidate(strings.TrimPrefix(c.Candidate, "candidate:")); err != nil {
		return fmt.Errorf("candidate does not parse: %w", err)
	}
	return nil
}
