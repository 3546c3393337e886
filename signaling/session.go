package signaling

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/datachannel"
	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

const (
	// sendQueueLen bounds the messages waiting for one client. Signaling
	// messages cannot be dropped one by one (a lost offer stalls the call),
	// so a client this far behind is disconnected; it can rejoin.
	sendQueueLen = 256
	// maxMessageSize bounds one incoming message; SDPs are a few KB.
	maxMessageSize = 1 << 20
	writeTimeout   = 10 * time.Second
)

// session is one participant's WebSocket connection. Its read loop is the
// only goroutine that handles the client's messages, so they are handled in
// order; its write loop is the only writer to the socket.
type session struct {
	srv  *Server
	conn *websocket.Conn
	log  *slog.Logger

	host    string      // the Host the client reached us at, for TURN URLs
	out     chan []byte // nil entry: close after the messages before it
	ctx     context.Context
	cancel  context.CancelFunc
	closing sync.Once

	// Set by the join, then read-only.
	id     string
	claims *auth.Claims
	room   *Room
	peer   *sfu.Peer

	meetingBudget meetingBudget // read loop only (meeting.go)
}

func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	if s.ctx.Err() != nil {
		httpError(w, http.StatusServiceUnavailable, "server is shutting down")
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the request
	}
	ctx, cancel := context.WithCancel(s.ctx)
	sess := &session{
		srv:    s,
		conn:   conn,
		log:    s.log.With("remote", r.RemoteAddr),
		host:   r.Host,
		out:    make(chan []byte, sendQueueLen),
		ctx:    ctx,
		cancel: cancel,
	}
	s.wg.Add(1)
	defer s.wg.Done()
	sess.serve()
}

func (s *session) serve() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.writeLoop()
	}()
	defer func() {
		s.cancel()
		<-done
		s.leaveRoom()
	}()

	s.conn.SetReadLimit(maxMessageSize)
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.JoinTimeout))
	s.conn.SetPongHandler(func(string) error {
		if s.peer == nil {
			return nil // before the join only the join deadline counts
		}
		return s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.PongTimeout))
	})
	for {
		kind, data, err := s.conn.ReadMessage()
		if err != nil {
			if s.ctx.Err() == nil && !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				s.log.Info("connection ended", "participant", s.id, "err", err)
			}
			return
		}
		if s.peer != nil {
			_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.PongTimeout))
		}
		if kind != websocket.TextMessage {
			s.sendError(protocol.CodeBadMessage, "messages must be JSON text frames", "")
			continue
		}
		s.handle(data)
		if s.ctx.Err() != nil {
			return
		}
	}
}

func (s *session) writeLoop() {
	ping := time.NewTicker(s.srv.cfg.PingInterval)
	defer ping.Stop()
	defer s.conn.Close()
	for {
		select {
		case <-s.ctx.Done():
			return
		case data := <-s.out:
			_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if data == nil {
				_ = s.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, ""))
				s.cancel()
				return
			}
			if err := s.conn.WriteMessage(websocket.TextMessage, data); err != nil {
				s.cancel()
				return
			}
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				s.cancel()
				return
			}
		}
	}
}

// send queues a message for the client without ever blocking the caller,
// which may be a room broadcasting to everyone.
func (s *session) send(m any) {
	if s.ctx.Err() != nil {
		return
	}
	data, err := protocol.Encode(m)
	if err != nil {
		s.log.Error("encode", "err", err)
		return
	}
	select {
	case s.out <- data:
	default:
		s.log.Warn("client is not reading its messages; disconnecting", "participant", s.id, "queued", len(s.out))
		s.srv.metrics.errors.WithLabelValues(protocol.CodeTooSlow).Inc()
		s.cancel()
	}
}

func (s *session) sendError(code, msg, ref string) {
	s.srv.metrics.errors.WithLabelValues(code).Inc()
	s.log.Info("refused client message", "participant", s.id, "code", code, "ref", ref, "err", msg)
	s.send(&protocol.Error{Code: code, Message: msg, Ref: ref})
}

// endWith tells the client why, then closes the connection.
func (s *session) endWith(code, msg, ref string) {
	s.sendError(code, msg, ref)
	s.closing.Do(func() {
		select {
		case s.out <- nil:
		default:
			s.cancel()
		}
	})
}

// end closes the connection now.
func (s *session) end() { s.cancel() }

func (s *session) handle(data []byte) {
	msg, err := protocol.Decode(data)
	if err != nil {
		s.sendError(protocol.CodeBadMessage, err.Error(), "")
		return
	}
	t := protocol.TypeOf(msg)
	s.srv.metrics.messages.WithLabelValues(t).Inc()
	if s.peer == nil {
		j, ok := msg.(*protocol.Join)
		if !ok {
			s.sendError(protocol.CodeNotJoined, "the first message must be a join", t)
			return
		}
		s.handleJoin(j)
		return
	}
	switch m := msg.(type) {
	case *protocol.Join:
		s.sendError(protocol.CodeBadMessage, "already joined", t)
	case *protocol.Offer:
		if m.Target != protocol.TargetPublisher {
			s.sendError(protocol.CodeBadMessage, "clients offer only on the publisher PeerConnection", t)
			return
		}
		if err := s.peer.HandleOffer(m.SDP, m.Sources); err != nil {
			s.mediaError(err, t)
		}
	case *protocol.Answer:
		if m.Target != protocol.TargetSubscriber {
			s.sendError(protocol.CodeBadMessage, "clients answer only on the subscriber PeerConnection", t)
			return
		}
		if err := s.peer.HandleAnswer(m.SDP); err != nil {
			s.mediaError(err, t)
		}
	case *protocol.Candidate:
		if err := s.peer.HandleCandidate(m.Target, toWebRTC(m.Candidate)); err != nil {
			s.mediaError(err, t)
		}
	case *protocol.Leave:
		s.end()
	default:
		if !s.handleMeeting(m) {
			s.sendError(protocol.CodeBadMessage, "clients do not send "+t, t)
		}
	}
}

func (s *session) mediaError(err error, ref string) {
	switch {
	case errors.Is(err, sfu.ErrBadSDP):
		s.sendError(protocol.CodeBadSDP, err.Error(), ref)
	case errors.Is(err, sfu.ErrBadCandidate):
		s.sendError(protocol.CodeBadCandidate, err.Error(), ref)
	default:
		s.sendError(protocol.CodeInternal, err.Error(), ref)
	}
}

func (s *session) handleJoin(j *protocol.Join) {
	if j.Version != protocol.Version {
		s.endWith(protocol.CodeBadVersion, fmt.Sprintf("protocol version %d is not supported; this server speaks %d", j.Version, protocol.Version), protocol.TypeJoin)
		return
	}
	claims, err := s.srv.keys.Verify(j.Token)
	if err != nil {
		s.endWith(protocol.CodeBadToken, err.Error(), protocol.TypeJoin)
		return
	}
	s.claims = claims
	s.id = "PA_" + shortID()
	s.log = s.log.With("participant", s.id, "identity", claims.Identity, "room", claims.Room)

	var room *Room
	var others []protocol.Participant
	for attempt := 0; ; attempt++ {
		room = s.srv.room(claims.Room)
		for _, old := range room.withIdentity(claims.Identity) {
			if room.leave(old) {
				old.endWith(protocol.CodeReplaced, "the same identity joined this room again", "")
			}
		}
		others, err = room.join(s)
		if err == nil {
			break
		}
		if !errors.Is(err, errRoomClosed) || attempt > 3 {
			s.endWith(protocol.CodeInternal, err.Error(), protocol.TypeJoin)
			return
		}
	}
	s.room = room
	s.send(&protocol.Joined{
		Room:         claims.Room,
		Participant:  s.participant(),
		Participants: others,
		Grants:       claims.Grants,
		ICEServers:   s.iceServers(),
	})
	docPeer := datachannel.Participant{
		ID: s.id, Identity: claims.Identity, Name: claims.Name, Room: claims.Room,
		CanEdit: claims.Grants.EditDocs, IsAdmin: claims.Grants.RoomAdmin,
	}
	hub := s.srv.hub
	peer, err := room.media.AddPeer(s.id, s, sfu.PeerOptions{
		CanPublish:    claims.Grants.Publish,
		CanSubscribe:  claims.Grants.Subscribe,
		OnDataChannel: func(dc *webrtc.DataChannel) { hub.Attach(docPeer, dc) },
	})
	if err != nil {
		s.endWith(protocol.CodeInternal, "media: "+err.Error(), protocol.TypeJoin)
		return
	}
	s.peer = peer
	s.log.Info("joined", "name", claims.Name)
}

// iceServers are the configured servers plus TURN credentials of this
// participant's own, so that the relay can count and refuse per identity.
func (s *session) iceServers() []protocol.ICEServer {
	out := append([]protocol.ICEServer(nil), s.srv.cfg.ICEServers...)
	if s.srv.turn == nil {
		return out
	}
	creds := s.srv.turn.Credentials(s.claims.Identity)
	for _, is := range s.srv.turn.ICEServers(s.host, creds) {
		out = append(out, protocol.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}
	return out
}

// leaveRoom runs once the connection has ended.
func (s *session) leaveRoom() {
	if s.room == nil {
		return
	}
	if s.room.leave(s) {
		s.log.Info("left")
	} else {
		// Replaced or the room closed: make sure no media stays behind.
		s.room.media.RemovePeer(s.id)
	}
	s.srv.hub.Leave(s.id) // after the media peer (and its data channels) is gone
	s.srv.dropRoomIfEmpty(s.room)
}

func (s *session) participant() protocol.Participant {
	return protocol.Participant{ID: s.id, Identity: s.claims.Identity, Name: s.claims.Name}
}

// SendDescription implements sfu.Signaler.
func (s *session) SendDescription(target string, sd webrtc.SessionDescription) {
	if sd.Type == webrtc.SDPTypeOffer {
		s.send(&protocol.Offer{Target: target, SDP: sd.SDP})
		return
	}
	s.send(&protocol.Answer{Target: target, SDP: sd.SDP})
}

// SendCandidate implements sfu.Signaler.
func (s *session) SendCandidate(target string, c *webrtc.ICECandidateInit) {
	s.send(&protocol.Candidate{Target: target, Candidate: &protocol.ICECandidate{
		Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment,
	}})
}

func toWebRTC(c *protocol.ICECandidate) *webrtc.ICECandidateInit {
	if c == nil {
		return nil
	}
	return &webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}
}

// shortID is a random id part, unique enough within a room.
func shortID() string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)
}
