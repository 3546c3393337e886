package session

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Comment requests: a participant with the editDocs grant and the document
// open creates threads on ranges, replies, edits its own comments and
// resolves or reopens threads. Every changed thread goes to everyone who
// has the document open; the requester's copy carries its reqId.

// commentHandlers answers the comment requests, by type.
var commentHandlers = map[string]func(*Session, *protocol.CommentRequest) *docErr{
	protocol.DocTypeCommentCreate:  (*Session).commentCreate,
	protocol.DocTypeCommentReply:   (*Session).commentReply,
	protocol.DocTypeCommentEdit:    (*Session).commentEdit,
	protocol.DocTypeCommentResolve: (*Session).commentResolve,
}

// Comment requests are rate limited per session: a burst, then a steady
// rate.
const (
	commentBurst = 20
	commentRate  = 5 // per second
)

// tokens is a token bucket.
type tokens struct {
	mu   sync.Mutex
	have float64
	last time.Time
}

func (b *tokens) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.have = commentBurst
	} else {
		b.have = min(commentBurst, b.have+now.Sub(b.last).Seconds()*commentRate)
	}
	b.last = now
	if b.have < 1 {
		return false
	}
	b.have--
	return true
}

// handleComment decodes and checks a comment request, then runs its
// handler.
func (s *Session) handleComment(h func(*Session, *protocol.CommentRequest) *docErr, hd header, data []byte) *docErr {
	var req protocol.CommentRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return &docErr{code: protocol.DocErrBadMessage, msg: "malformed " + hd.Type + ": " + err.Error(), err: err}
	}
	switch {
	case s.srv.comments == nil:
		return refuse(protocol.DocErrInternal, "comments are not available on this server")
	case req.Doc == "":
		return refuse(protocol.DocErrBadMessage, "missing doc")
	case !s.p.CanEdit:
		return refuse(protocol.DocErrForbidden, "commenting needs the editDocs grant")
	case !s.hasOpen(req.Doc):
		return refuse(protocol.DocErrNotOpen, "open the document before commenting in it")
	case !s.commentTokens.take(time.Now()):
		return refuse(protocol.DocErrRateLimited, "too many comment requests; wait a moment")
	}
	return h(s, &req)
}

func (s *Session) commentCreate(req *protocol.CommentRequest) *docErr {
	if req.Rev == nil || req.Start == nil || req.End == nil {
		return refuse(protocol.DocErrBadMessage, "commentCreate needs rev, start and end")
	}
	t, err := s.srv.comments.NewThread(s.ctx, req.Doc, *req.Rev, *req.Start, *req.End, s.p.Identity, s.p.Name, req.Text)
	return s.threadChanged(req, t, err)
}

func (s *Session) commentReply(req *protocol.CommentRequest) *docErr {
	t, err := s.srv.comments.Reply(s.ctx, req.Doc, req.Thread, s.p.Identity, s.p.Name, req.Text)
	return s.threadChanged(req, t, err)
}

func (s *Session) commentEdit(req *protocol.CommentRequest) *docErr {
	t, err := s.srv.comments.Edit(s.ctx, req.Doc, req.Thread, req.Comment, s.p.Identity, req.Text)
	return s.threadChanged(req, t, err)
}

func (s *Session) commentResolve(req *protocol.CommentRequest) *docErr {
	t, err := s.srv.comments.Resolve(s.ctx, req.Doc, req.Thread, req.Resolved)
	return s.threadChanged(req, t, err)
}

// threadChanged sends a changed thread to everyone who has its document
// open.
func (s *Session) threadChanged(req *protocol.CommentRequest, t collab.CommentThread, err error) *docErr {
	if err != nil {
		return serviceErr(err)
	}
	wire := wireThread(t)
	all := mustEncode(&protocol.ThreadUpdate{Type: protocol.DocTypeThread, Doc: req.Doc, Thread: wire})
	for _, o := range s.srv.roomSessions(s.p.Room) {
		switch {
		case o == s && req.ReqID != "":
			o.send(&protocol.ThreadUpdate{Type: protocol.DocTypeThread, ReqID: req.ReqID, Doc: req.Doc, Thread: wire})
		case o.hasOpen(req.Doc):
			o.sendControl(all)
		}
	}
	return nil
}

// sendThreads sends doc's threads to this session (after opened), if it
// has any.
func (s *Session) sendThreads(out Outbox, doc string) {
	if s.srv.comments == nil {
		return
	}
	ts, err := s.srv.comments.Threads(s.ctx, doc)
	if err != nil {
		s.fail(serviceErr(err), "", doc, "")
		return
	}
	if len(ts) == 0 {
		return // threads are never deleted: none now means none before
	}
	list := &protocol.CommentList{Type: protocol.DocTypeComments, Doc: doc, Threads: make([]protocol.CommentThread, 0, len(ts))}
	for _, t := range ts {
		list.Threads = append(list.Threads, wireThread(t))
	}
	out.Send(mustEncode(list))
}

func wireThread(t collab.CommentThread) protocol.CommentThread {
	w := protocol.CommentThread{ID: t.ID, Rev: t.Rev, Start: t.Start, End: t.End, Resolved: t.Resolved,
		Created: rfc3339(t.Created), Comments: make([]protocol.Comment, 0, len(t.Comments))}
	for _, c := range t.Comments {
		wc := protocol.Comment{ID: c.ID, Author: c.Author, Name: c.Name, Text: c.Text, Created: rfc3339(c.Created)}
		if !c.Edited.IsZero() {
			wc.Edited = rfc3339(c.Edited)
		}
		w.Comments = append(w.Comments, wc)
	}
	return w
}
