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
//     parses), takes one of the session's PendingSubmits credits and hands
//     it to the service without waiting (SubmitFunc: no channel per op).
//     With every credit taken Handle waits, and the transport stops
//     reading: backpressure up to the client.
//  3. The document's writer transforms the op over what its base missed,
//     applies it, commits it durably (group commit) and publishes it to
//     every subscription (package collab, document.go).
//  4. forward (stream.go) receives it on this session's subscription: the
//     author's own op leaves as an ack, in order with the others' ops.
//  5. The writer hands every result to onResult, which queues it for
//     resultLoop (answers has room for one per credit, so the writer never
//     waits); resultLoop returns the credit. A refusal leaves as a
//     docError naming the op's id; an op already applied before (a
//     resubmission after a reconnect) gets its ack here, since it is not
//     published again. Results of one document come in submit order.

// answer is a submit's result on its way to resultLoop.
type answer struct {
	doc, id string
	r       collab.Result
}

// pendingSubmitQueue bounds a session's submits in flight and carries
// their results to resultLoop.
type pendingSubmitQueue struct {
	credits  chan struct{}                             // one per submit awaiting its result
	answers  chan answer                               // room for every credit: the writer never waits
	onResult func(collab.SubmitRequest, collab.Result) // the session's takeResult
}

func newSubmitQueue(pending int) pendingSubmitQueue {
	return pendingSubmitQueue{credits: make(chan struct{}, pending), answers: make(chan answer, pending)}
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
	select {
	case s.submits.credits <- struct{}{}:
	case <-s.ctx.Done():
		return nil
	}
	s.srv.svc.SubmitFunc(collab.SubmitRequest{DocID: m.Doc, Author: s.p.Identity, ClientOpID: m.ID, BaseRev: *m.Rev, Op: op}, s.submits.onResult)
	return nil
}

// takeResult is the service's callback for this session's submits. It
// runs on a document writer and must not block: answers has room for
// every credit.
func (s *Session) takeResult(req collab.SubmitRequest, r collab.Result) {
	s.submits.answers <- answer{doc: req.DocID, id: req.ClientOpID, r: r}
}

// resultLoop reports submit results. A normal ack travels in the
// document's stream (forward); here come refusals and acks of ops applied
// before (a resubmission after a reconnect).
func (s *Session) resultLoop() {
	for {
		var a answer
		select {
		case <-s.ctx.Done():
			return
		case a = <-s.submits.answers:
		}
		<-s.submits.credits // the credit its submit took
		switch r := a.r; {
		case r.Err != nil:
			s.fail(serviceErr(r.Err), "", a.doc, a.id)
		case r.Ack.Duplicate:
			s.send(&protocol.DocAck{Type: protocol.DocTypeAck, Doc: a.doc, Rev: r.Ack.Rev, ID: a.id})
		}
	}
}
