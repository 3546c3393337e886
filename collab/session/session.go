package session

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/huddle-rtc/huddle/internal/ratelog"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Session is one participant's documents session. Its transport calls
// Handle for each collab message, in order, from one goroutine; Cursor for
// each cursors message; Attach when a collab channel (re)opens; Close and
// Wait when the participant goes.
type Session struct {
	srv  *Server
	p    Participant
	link Link
	log  *ratelog.Log

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // resultLoop, cursorLoop, one forwarder per open document

	// srv.mu
	docs map[string]*openDoc
	out  Outbox
	left bool

	submits       pendingSubmitQueue // submits awaiting their result (submit.go)
	cur           cursorBox          // coalesced cursors (cursors.go)
	commentTokens tokens             // comment requests' rate (comments.go)
	seen          atomic.Int64       // when the client last sent anything, unix ns (presence.go)
	expired       atomic.Bool        // silent past the expiry: out of presence
}

func newSession(srv *Server, p Participant, link Link) *Session {
	ctx, cancel := context.WithCancel(srv.ctx)
	s := &Session{
		srv: srv, p: p, link: link,
		log:     newRateLog(srv.log.With("participant", p.ID, "identity", p.Identity, "room", p.Room)),
		ctx:     ctx,
		cancel:  cancel,
		docs:    map[string]*openDoc{},
		submits: newSubmitQueue(srv.cfg.PendingSubmits),
		cur:     newCursorBox(),
	}
	s.submits.onResult = s.takeResult // made once: a method value per submit would allocate
	return s
}

func (s *Session) start() {
	s.seen.Store(time.Now().UnixNano())
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.resultLoop() }()
	go func() { defer s.wg.Done(); s.cursorLoop() }()
}

// Participant is who the session belongs to.
func (s *Session) Participant() Participant { return s.p }

// Attach makes o the session's collab writer. A new collab channel
// replaces the old one: what was open there is closed, and the client
// opens again on the new one. False: the session has ended.
func (s *Session) Attach(o Outbox) bool {
	s.srv.mu.Lock()
	if s.left {
		s.srv.mu.Unlock()
		return false
	}
	old := s.out
	s.out = o
	s.srv.mu.Unlock()
	if old != nil {
		s.closeAll(true)
	}
	return true
}

// Close ends the session: its documents close and, with broadcast, the
// room hears about the documents it had open. Its goroutines stop; Wait
// waits for them.
func (s *Session) Close(broadcast bool) {
	s.srv.mu.Lock()
	if s.srv.sessions[s.p.ID] == s {
		delete(s.srv.sessions, s.p.ID)
	}
	s.left = true
	s.srv.mu.Unlock()
	s.closeAll(broadcast)
	s.cancel()
}

// Wait waits for the session's goroutines after Close.
func (s *Session) Wait() { s.wg.Wait() }

// header is what every message must have, read first.
type header struct {
	Type  string `json:"type"`
	ReqID string `json:"reqId"`
	Doc   string `json:"doc"`
	ID    string `json:"id"`
}

// Handle takes one message of the collab channel. Submits go to submit
// (submit.go), cursors to the cursor box, everything else to the request
// handler of its type (requests.go, comments.go).
func (s *Session) Handle(data []byte) {
	s.touch()
	var hd header
	if err := json.Unmarshal(data, &hd); err != nil {
		s.fail(&docErr{code: protocol.DocErrBadMessage, msg: "not a JSON message object", err: err}, "", "", "")
		return
	}
	switch hd.Type {
	case protocol.DocTypeSubmit:
		if e := s.submit(data); e != nil {
			s.fail(e, "", hd.Doc, hd.ID)
		}
		return
	case protocol.DocTypeCursor:
		s.Cursor(data)
		return
	case protocol.DocTypeHeartbeat:
		return
	case "":
		s.fail(refuse(protocol.DocErrBadMessage, "message has no type"), hd.ReqID, hd.Doc, "")
		return
	}
	if ch := commentHandlers[hd.Type]; ch != nil {
		if e := s.handleComment(ch, hd, data); e != nil {
			s.fail(e, hd.ReqID, hd.Doc, "")
		}
		return
	}
	h := requestHandlers[hd.Type]
	if h == nil {
		s.fail(refuse(protocol.DocErrBadMessage, "unknown message type "+hd.Type), hd.ReqID, hd.Doc, "")
		return
	}
	var req protocol.DocRequest
	if err := json.Unmarshal(data, &req); err != nil {
		s.fail(&docErr{code: protocol.DocErrBadMessage, msg: "malformed " + hd.Type + ": " + err.Error(), err: err}, hd.ReqID, hd.Doc, "")
		return
	}
	if e := h(s, &req); e != nil {
		s.fail(e, hd.ReqID, hd.Doc, "")
	}
}

// FrameError reports a frame the transport could not reassemble.
func (s *Session) FrameError(err error) { s.fail(serviceErr(err), "", "", "") }

// outbox is the current collab writer, nil before the channel attached.
func (s *Session) outbox() Outbox {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	return s.out
}

// sendControl queues an answer, error or notice on the collab channel.
func (s *Session) sendControl(msg []byte) {
	if o := s.outbox(); o != nil {
		o.Send(msg)
	}
}

func (s *Session) send(m any) { s.sendControl(mustEncode(m)) }

// fail sends a refusal and logs it.
func (s *Session) fail(e *docErr, reqID, doc, id string) {
	args := []any{"code", e.code, "doc", doc}
	if reqID != "" {
		args = append(args, "reqId", reqID)
	}
	if id != "" {
		args = append(args, "id", id)
	}
	if e.err != nil {
		args = append(args, "err", e.err)
	}
	if e.code == protocol.DocErrInternal {
		s.log.Warn("document request failed", args...)
	} else {
		s.log.Info("refused document request", append(args, "reason", e.msg)...)
	}
	s.send(&protocol.DocError{Type: protocol.DocTypeError, ReqID: reqID, Doc: doc, ID: id, Code: e.code, Message: e.msg})
}

func (s *Session) hasOpen(doc string) bool {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	return s.docs[doc] != nil
}

// checkDoc makes sure doc names a document of the session's room.
func (s *Session) checkDoc(doc string) *docErr {
	if doc == "" {
		return refuse(protocol.DocErrBadMessage, "missing doc")
	}
	room, err := s.srv.roomOf(s.ctx, doc)
	if err != nil {
		return serviceErr(err)
	}
	if room != s.p.Room {
		return refuse(protocol.DocErrUnknownDoc, "no such document in this room")
	}
	return nil
}
