package session

import (
	"errors"
	"sync"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// openDoc is one document a session has open: its subscription to the
// service and the goroutine (forward) that passes it to the client.
type openDoc struct {
	id    string
	room  string
	sub   *collab.Subscription
	start int64  // the revision answered in opened; stream ops up to it are skipped
	out   Outbox // the collab writer it was opened on

	mu      sync.Mutex
	lastRev int64 // the newest op queued for the client
	ended   bool
	dones   []pendingDone // answers to send once the op of their rev is queued
}

type pendingDone struct {
	rev int64
	msg []byte
}

// LagNotice is what the client gets when this stream's ops are dropped:
// it opens again from its revision.
func (od *openDoc) LagNotice() []byte {
	return mustEncode(&protocol.DocRequest{Type: protocol.DocTypeLagging, Doc: od.id})
}

// Drop ends the subscription after its queued ops were dropped.
func (od *openDoc) Drop() { od.sub.Close() }

// snapshotStreamed is the size from which a snapshot is streamed to the
// transport instead of encoded whole.
const snapshotStreamed = 64 << 10

// open subscribes first, then answers from the subscription's revision:
// the ops after the client's rev up to it, or the text at it. The stream
// then carries every op after that revision, so nothing is lost or sent
// twice.
func (s *Session) open(req *protocol.DocRequest) *docErr {
	srv := s.srv
	if e := s.checkDoc(req.Doc); e != nil {
		return e
	}
	out := s.outbox()
	if out == nil {
		return refuse(protocol.DocErrInternal, "no collab channel")
	}
	meta, err := srv.svc.Doc(s.ctx, req.Doc)
	if err != nil {
		return serviceErr(err)
	}
	srv.mu.Lock()
	old := s.docs[req.Doc]
	delete(s.docs, req.Doc)
	srv.mu.Unlock()
	if old != nil {
		s.retire(old) // reopened (after lagging): the old stream stops here
	}
	sub, err := srv.svc.Subscribe(s.ctx, req.Doc)
	if err != nil {
		if old != nil {
			srv.broadcastPresence(old.room, old.id)
		}
		return serviceErr(err)
	}
	opened := &protocol.DocOpened{Type: protocol.DocTypeOpened, ReqID: req.ReqID, Doc: req.Doc, Rev: sub.Rev,
		ReadOnly: !s.p.CanEdit || meta.ReadOnly}
	if req.Rev != nil && *req.Rev >= 0 && *req.Rev <= sub.Rev {
		// Catch-up ops even when a snapshot would be smaller: a client
		// with unacknowledged edits can only rebase them over ops.
		ops, err := s.catchUp(req.Doc, *req.Rev, sub.Rev)
		switch {
		case err == nil:
			opened.Ops = ops
		case errors.Is(err, collab.ErrRevisionTooOld):
			// the ops are gone: a snapshot
		default:
			sub.Close()
			return serviceErr(err)
		}
	}
	snapshot := opened.Ops == nil && (req.Rev == nil || *req.Rev != sub.Rev)
	od := &openDoc{id: req.Doc, room: s.p.Room, sub: sub, start: sub.Rev, lastRev: sub.Rev, out: out}
	srv.mu.Lock()
	if s.left || s.out != out {
		srv.mu.Unlock()
		sub.Close()
		return nil
	}
	s.docs[req.Doc] = od
	srv.mu.Unlock()
	// opened is queued before the forwarder starts: it precedes every op.
	switch {
	case snapshot && len(sub.Text) >= snapshotStreamed:
		out.SendStream(newOpenedStream(opened, sub.Text))
	case snapshot:
		opened.Text = &sub.Text
		out.Send(mustEncode(opened))
	default:
		out.Send(mustEncode(opened))
	}
	s.sendThreads(out, req.Doc)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.forward(od)
	}()
	if old == nil {
		srv.broadcastPresence(od.room, od.id)
	}
	return nil
}

// catchUp returns the ops after rev up to upTo.
func (s *Session) catchUp(doc string, rev, upTo int64) ([]protocol.DocOp, error) {
	if rev == upTo {
		return []protocol.DocOp{}, nil
	}
	recs, err := s.srv.svc.OpsSince(s.ctx, doc, rev)
	if err != nil {
		return nil, err
	}
	ops := make([]protocol.DocOp, 0, len(recs))
	for _, r := range recs {
		if r.Rev > upTo {
			break
		}
		op, err := r.Op.MarshalJSON()
		if err != nil {
			return nil, err
		}
		ops = append(ops, protocol.DocOp{Rev: r.Rev, Op: op, Author: r.Author, ID: r.ClientOpID})
	}
	return ops, nil
}

// forward passes every op of od's subscription to the client, in order:
// its own ops (by identity, with a client op id) as ack, others as op.
// This is where a submitted op's ack leaves (see submit.go).
func (s *Session) forward(od *openDoc) {
	out := od.out
	defer out.Forget(od)
	defer s.flushDones(od)
	for rec := range od.sub.C {
		if rec.Rev <= od.start {
			continue
		}
		var msg []byte
		if rec.Author == s.p.Identity && rec.ClientOpID != "" {
			msg = mustEncode(&protocol.DocAck{Type: protocol.DocTypeAck, Doc: od.id, Rev: rec.Rev, ID: rec.ClientOpID})
		} else if msg = rec.SharedEncoding(func(r collab.OpRecord) []byte { return encodeDocOp(od.id, r) }); msg == nil {
			s.log.Warn("unencodable op in log", "doc", od.id, "rev", rec.Rev)
			continue
		}
		if !out.SendOp(od, msg) {
			od.sub.Close() // lagging (queued by the transport), or retired
			return
		}
		for _, d := range od.queued(rec.Rev) {
			out.Send(d)
		}
	}
	switch err := od.sub.Err(); {
	case errors.Is(err, collab.ErrLagging):
		out.Lag(od)
	case errors.Is(err, collab.ErrDocDeleted):
		s.srv.mu.Lock()
		if s.docs[od.id] == od {
			delete(s.docs, od.id)
		}
		s.srv.mu.Unlock()
	case errors.Is(err, collab.ErrFenced), errors.Is(err, collab.ErrConflict), errors.Is(err, collab.ErrUnavailable):
		// The service dropped its copy (collab/stale.go): the client is
		// told, and opens the document again to get the store's state.
		s.srv.mu.Lock()
		if s.docs[od.id] == od {
			delete(s.docs, od.id)
		}
		s.srv.mu.Unlock()
		s.fail(serviceErr(err), "", od.id, "")
	}
}

// encodeDocOp is the op message everyone but its author gets (nil if the
// op cannot be encoded): the same bytes for every session, made once per
// op and shared (collab.OpRecord.SharedEncoding).
func encodeDocOp(doc string, r collab.OpRecord) []byte {
	op, err := r.Op.MarshalJSON()
	if err != nil {
		return nil
	}
	return mustEncode(&protocol.DocOp{Type: protocol.DocTypeOp, Doc: doc, Rev: r.Rev, Op: op, Author: r.Author, ID: r.ClientOpID})
}

// queued records that the op of rev is queued and returns the answers
// that were waiting for it.
func (od *openDoc) queued(rev int64) [][]byte {
	od.mu.Lock()
	defer od.mu.Unlock()
	od.lastRev = rev
	var due [][]byte
	kept := od.dones[:0]
	for _, d := range od.dones {
		if d.rev <= rev {
			due = append(due, d.msg)
		} else {
			kept = append(kept, d)
		}
	}
	od.dones = kept
	return due
}

// flushDones sends the answers still waiting when od's stream ends.
func (s *Session) flushDones(od *openDoc) {
	od.mu.Lock()
	od.ended = true
	dones := od.dones
	od.dones = nil
	od.mu.Unlock()
	for _, d := range dones {
		od.out.Send(d.msg)
	}
}

// doneAfter sends msg once the op of rev has been queued for the client
// (so that undo's op arrives before its done), or now if the client does
// not follow the document.
func (s *Session) doneAfter(doc string, rev int64, msg []byte) {
	s.srv.mu.Lock()
	od := s.docs[doc]
	s.srv.mu.Unlock()
	if od != nil {
		od.mu.Lock()
		if !od.ended && od.lastRev < rev {
			od.dones = append(od.dones, pendingDone{rev: rev, msg: msg})
			od.mu.Unlock()
			return
		}
		od.mu.Unlock()
	}
	s.sendControl(msg)
}

// retire ends a subscription for good: nothing more of it is sent.
func (s *Session) retire(od *openDoc) {
	od.out.Retire(od)
	od.sub.Close()
	s.cur.forget(od.id)
}

// closeAll closes every open document.
func (s *Session) closeAll(broadcast bool) {
	s.srv.mu.Lock()
	docs := s.docs
	s.docs = map[string]*openDoc{}
	s.srv.mu.Unlock()
	for _, od := range docs {
		s.retire(od)
		if broadcast {
			s.srv.broadcastPresence(od.room, od.id)
			s.broadcastCursorGone(od.room, od.id)
		}
	}
}
