package session

import (
	"encoding/json"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// An op's path, from the channel to the ack:
//
//  1. The transport reassembles the submit and calls Handle, in channel
//     order (session.go).
//  2. submit checks it (fields, grant, the document is open, the op
//     parses) and hands it to the service without waiting: SubmitAsync
//     returns a channel for its result. The pending submit is queued on
//     results, in order; a full queue makes Handle wait, and the transport
//     stops reading: backpressure up to the client.
//  3. The document's writer transforms the op over what its base missed,
//     applies it, commits it durably (group commit) and publishes it to
//     every subscription (package collab, document.go).
//  4. forward (stream.go) receives it on this session's subscription: the
//     author's own op leaves as an ack, in order with the others' ops.
//  5. resultLoop reads the results in submit order: a refusal leaves as a
//     docError naming the op's id; an op already applied before (a
//     resubmission after a reconnect) gets its ack here, since it is not
//     published again.

type pendingSubmit struct {
	doc, id string
	ch      <-chan collab.Result
}

func (s *Session) submit(data []byte) *docErr {
	var m struct {
		Doc string          `json:"doc"`
		Rev *int64          `json:"rev"`
		ID  string          `json:"id"`
		Op  json.RawMessage `json:"op"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return &docErr{code: protocol.DocErrBadMessage, msg: "malformed submit: " + err.Error(), err: err}
	}
	switch {
	case m.Doc == "":
		return refuse(protocol.DocErrBadMessage, "submit without doc")
	case m.ID == "":
		return refuse(protocol.DocErrBadMessage, "submit without id")
	case m.Rev == nil:
		return refuse(protocol.DocErrBadMessage, "submit without rev")
	case m.Op == nil:
		return refuse(protocol.DocErrBadMessage, "submit without op")
	}
	if !s.p.CanEdit {
		return refuse(protocol.DocErrReadOnly, "editing needs the editDocs grant")
	}
	if !s.hasOpen(m.Doc) {
		return refuse(protocol.DocErrNotOpen, "open the document before submitting to it")
	}
	op, err := ot.Parse(m.Op)
	if err != nil {
		return &docErr{code: protocol.DocErrInvalidOp, msg: err.Error(), err: err}
	}
	if *m.Rev < 0 {
		return refuse(protocol.DocErrInvalidOp, "negative base revision")
	}
	ch := s.srv.svc.SubmitAsync(collab.SubmitRequest{DocID: m.Doc, Author: s.p.Identity, ClientOpID: m.ID, BaseRev: *m.Rev, Op: op})
	select {
	case s.results <- pendingSubmit{doc: m.Doc, id: m.ID, ch: ch}:
	case <-s.ctx.Done():
	}
	return nil
}

// resultLoop reports submit results in the order of the submits. A normal
// ack travels in the document's stream (forward); here come refusals and
// acks of ops applied before (a resubmission after a reconnect).
func (s *Session) resultLoop() {
	for {
		var ps pendingSubmit
		select {
		case <-s.ctx.Done():
			return
		case ps = <-s.results:
		}
		var r collab.Result
		select {
		case <-s.ctx.Done():
			return
		case r = <-ps.ch:
		}
		switch {
		case r.Err != nil:
			s.fail(serviceErr(r.Err), "", ps.doc, ps.id)
		case r.Ack.Duplicate:
			s.send(&protocol.DocAck{Type: protocol.DocTypeAck, Doc: ps.doc, Rev: r.Ack.Rev, ID: ps.id})
		}
	}
}
