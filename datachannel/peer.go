package datachannel

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// peer is one participant's document state. Fields marked "hub.mu" are
// guarded by the hub's mutex, so that presence can be computed across
// peers.
type peer struct {
	hub *Hub
	p   Participant
	log *rateLog

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// hub.mu
	docs       map[string]*openDoc
	collab     *sender
	collabCh   Channel
	stopWriter context.CancelFunc
	cursorsCh  Channel
	left       bool

	inbox   chan []byte        // collab messages, in order
	results chan pendingSubmit // submits awaiting their result, in order

	curMu       sync.Mutex
	cursors     map[string]*cursorState
	cursorKick  chan struct{}
	cursorForce bool // curMu: pass pending cursors on now (tests)
	cursorSend  sync.Mutex
}

type pendingSubmit struct {
	doc, id string
	ch      <-chan collab.Result
}

// openDoc is one document a peer has open: its subscription and the
// goroutine that forwards it.
type openDoc struct {
	id    string
	room  string
	sub   *collab.Subscription
	start int64 // the revision answered in opened; stream ops up to it are skipped
	s     *sender

	mu      sync.Mutex
	lastRev int64 // the newest op queued for the client
	ended   bool
	dones   []pendingDone // answers to send once the op of their rev is queued
}

type pendingDone struct {
	rev int64
	msg []byte
}

// drop ends the subscription after its queued ops were dropped.
func (od *openDoc) drop() { od.sub.Close() }

func newPeer(h *Hub, p Participant) *peer {
	ctx, cancel := context.WithCancel(h.ctx)
	return &peer{
		hub: h, p: p,
		log:        newRateLog(h.log.With("participant", p.ID, "identity", p.Identity, "room", p.Room)),
		ctx:        ctx,
		cancel:     cancel,
		docs:       map[string]*openDoc{},
		inbox:      make(chan []byte, 64),
		results:    make(chan pendingSubmit, h.cfg.PendingSubmits),
		cursors:    map[string]*cursorState{},
		cursorKick: make(chan struct{}, 1),
	}
}

// run owns the peer's goroutines and returns once they have all stopped.
func (pr *peer) run() {
	pr.wg.Add(3)
	go func() { defer pr.wg.Done(); pr.handleLoop() }()
	go func() { defer pr.wg.Done(); pr.resultLoop() }()
	go func() { defer pr.wg.Done(); pr.cursorLoop() }()
	<-pr.ctx.Done()
	pr.wg.Wait()
}

func (pr *peer) hasOpen(doc string) bool {
	pr.hub.mu.Lock()
	defer pr.hub.mu.Unlock()
	return pr.docs[doc] != nil
}

func (pr *peer) attachCollab(ch Channel) {
	h := pr.hub
	s := newSender(h, ch, pr.log, func() { go pr.hub.leaveIf(pr) })
	wctx, stop := context.WithCancel(pr.ctx)
	h.mu.Lock()
	if pr.left {
		h.mu.Unlock()
		stop()
		_ = ch.Close()
		return
	}
	oldCh, oldStop := pr.collabCh, pr.stopWriter
	pr.collab, pr.collabCh, pr.stopWriter = s, ch, stop
	pr.wg.Add(1) // under h.mu, before leave can cancel: run's Wait counts it
	h.mu.Unlock()
	if oldCh != nil {
		// A new collab channel replaces the old one: what was open
		// there is closed; the client opens again on the new one.
		oldStop()
		_ = oldCh.Close()
		pr.closeAll(true)
	}
	rd := newReader(h.cfg.MaxMessage)
	ch.OnMessage(func(m webrtcMessage) {
		msg, err := rd.add(m.Data)
		if err != nil {
			pr.refuseFrame(err)
			return
		}
		if msg == nil {
			return
		}
		select {
		case pr.inbox <- msg: // a full inbox pauses this channel's reading: backpressure up to the client
		case <-pr.ctx.Done():
		}
	})
	ch.OnClose(func() {
		h.mu.Lock()
		current := pr.collabCh == ch
		h.mu.Unlock()
		if current {
			h.leaveIf(pr)
		}
	})
	go func() {
		defer pr.wg.Done()
		s.run(wctx)
	}()
}

func (pr *peer) attachCursors(ch Channel) {
	h := pr.hub
	h.mu.Lock()
	if pr.left {
		h.mu.Unlock()
		_ = ch.Close()
		return
	}
	old := pr.cursorsCh
	pr.cursorsCh = ch
	h.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	rd := newReader(h.cfg.MaxMessage)
	ch.OnMessage(func(m webrtcMessage) {
		msg, err := rd.add(m.Data)
		if err != nil {
			pr.refuseFrame(err)
			return
		}
		if msg != nil {
			pr.cursorMessage(msg)
		}
	})
}

// leave ends the peer; with broadcast the room hears about the documents
// it had open.
func (pr *peer) leave(broadcast bool) {
	h := pr.hub
	h.mu.Lock()
	pr.left = true
	chs := []Channel{pr.collabCh, pr.cursorsCh}
	h.mu.Unlock()
	pr.closeAll(broadcast)
	pr.cancel()
	for _, ch := range chs {
		if ch != nil {
			go ch.Close() // Pion's Close may wait for the association
		}
	}
}

// closeAll closes every open document.
func (pr *peer) closeAll(broadcast bool) {
	h := pr.hub
	h.mu.Lock()
	docs := pr.docs
	pr.docs = map[string]*openDoc{}
	h.mu.Unlock()
	for _, od := range docs {
		pr.retire(od)
		if broadcast {
			h.broadcastPresence(od.room, od.id)
			h.broadcastCursorGone(od.room, od.id, pr.p.ID)
		}
	}
}

// retire ends a subscription for good: nothing more of it is sent.
func (pr *peer) retire(od *openDoc) {
	od.s.retire(od)
	od.sub.Close()
	pr.curMu.Lock()
	delete(pr.cursors, od.id)
	pr.curMu.Unlock()
}

func (pr *peer) sender() *sender {
	pr.hub.mu.Lock()
	defer pr.hub.mu.Unlock()
	return pr.collab
}

// sendControl queues an answer, error or notice on the collab channel.
func (pr *peer) sendControl(msg []byte) {
	if s := pr.sender(); s != nil {
		s.pushControl(msg)
	}
}

func (pr *peer) send(m any) { pr.sendControl(mustEncode(m)) }

// fail sends a refusal and logs it.
func (pr *peer) fail(e *docErr, reqID, doc, id string) {
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
		pr.log.warn("document request failed", args...)
	} else {
		pr.log.info("refused document request", append(args, "reason", e.msg)...)
	}
	pr.send(&protocol.DocError{Type: protocol.DocTypeError, ReqID: reqID, Doc: doc, ID: id, Code: e.code, Message: e.msg})
}

func (pr *peer) refuseFrame(err error) {
	if errors.Is(err, protocol.ErrTooLarge) {
		pr.fail(&docErr{code: protocol.DocErrTooLarge, msg: "message larger than the limit", err: err}, "", "", "")
		return
	}
	pr.fail(&docErr{code: protocol.DocErrBadMessage, msg: "broken chunk sequence: " + err.Error(), err: err}, "", "", "")
}

func (pr *peer) handleLoop() {
	for {
		select {
		case <-pr.ctx.Done():
			return
		case msg := <-pr.inbox:
			pr.handle(msg)
		}
	}
}

// header is what every message must have, read first.
type header struct {
	Type  string `json:"type"`
	ReqID string `json:"reqId"`
	Doc   string `json:"doc"`
	ID    string `json:"id"`
}

func (pr *peer) handle(data []byte) {
	var hd header
	if err := json.Unmarshal(data, &hd); err != nil {
		pr.fail(&docErr{code: protocol.DocErrBadMessage, msg: "not a JSON message object", err: err}, "", "", "")
		return
	}
	var e *docErr
	switch hd.Type {
	case protocol.DocTypeSubmit:
		if e = pr.submit(data); e != nil {
			pr.fail(e, "", hd.Doc, hd.ID)
		}
		return
	case protocol.DocTypeCursor:
		pr.cursorMessage(data)
		return
	case protocol.DocTypeList, protocol.DocTypeCreate, protocol.DocTypeRename, protocol.DocTypeDelete,
		protocol.DocTypeLock, protocol.DocTypeOpen, protocol.DocTypeClose, protocol.DocTypeUndo,
		protocol.DocTypeRedo, protocol.DocTypeName, protocol.DocTypeHistory, protocol.DocTypeRestore:
		var req protocol.DocRequest
		if err := json.Unmarshal(data, &req); err != nil {
			e = &docErr{code: protocol.DocErrBadMessage, msg: "malformed " + hd.Type + ": " + err.Error(), err: err}
			break
		}
		e = pr.request(&req)
	case "":
		e = refuse(protocol.DocErrBadMessage, "message has no type")
	default:
		e = refuse(protocol.DocErrBadMessage, "unknown message type "+hd.Type)
	}
	if e != nil {
		pr.fail(e, hd.ReqID, hd.Doc, "")
	}
}

// checkDoc makes sure doc names a document of the peer's room.
func (pr *peer) checkDoc(doc string) *docErr {
	if doc == "" {
		return refuse(protocol.DocErrBadMessage, "missing doc")
	}
	room, err := pr.hub.roomOf(pr.ctx, doc)
	if err != nil {
		return serviceErr(err)
	}
	if room != pr.p.Room {
		return refuse(protocol.DocErrUnknownDoc, "no such document in this room")
	}
	return nil
}

func (pr *peer) request(req *protocol.DocRequest) *docErr {
	h, ctx := pr.hub, pr.ctx
	switch req.Type {
	case protocol.DocTypeList:
		docs, err := h.docList(ctx, pr.p.Room)
		if err != nil {
			return serviceErr(err)
		}
		pr.send(&protocol.DocList{Type: protocol.DocTypeDocs, ReqID: req.ReqID, Docs: docs})
		return nil

	case protocol.DocTypeCreate:
		if !pr.p.CanEdit {
			return refuse(protocol.DocErrForbidden, "creating documents needs the editDocs grant")
		}
		title := req.Title
		if title == "" {
			title = "Untitled"
		}
		meta, err := h.svc.CreateDoc(ctx, collab.CreateRequest{Room: pr.p.Room, Title: title, Text: req.Text})
		if err != nil {
			return serviceErr(err)
		}
		return pr.changed(req, meta.ID)

	case protocol.DocTypeRename:
		if req.Title == "" {
			return refuse(protocol.DocErrBadMessage, "missing title")
		}
		if e := pr.mayManage(req.Doc); e != nil {
			return e
		}
		if err := h.svc.RenameDoc(ctx, req.Doc, req.Title); err != nil {
			return serviceErr(err)
		}
		return pr.changed(req, req.Doc)

	case protocol.DocTypeDelete:
		if e := pr.mayManage(req.Doc); e != nil {
			return e
		}
		if err := h.svc.DeleteDoc(ctx, req.Doc); err != nil {
			return serviceErr(err)
		}
		h.forgetDoc(req.Doc)
		return pr.changed(req, req.Doc)

	case protocol.DocTypeLock:
		if e := pr.checkDoc(req.Doc); e != nil {
			return e
		}
		if !pr.p.IsAdmin {
			return refuse(protocol.DocErrForbidden, "locking documents needs the roomAdmin grant")
		}
		if err := h.svc.SetReadOnly(ctx, req.Doc, req.ReadOnly); err != nil {
			return serviceErr(err)
		}
		return pr.changed(req, req.Doc)

	case protocol.DocTypeOpen:
		return pr.open(req)

	case protocol.DocTypeClose:
		if req.Doc == "" {
			return refuse(protocol.DocErrBadMessage, "missing doc")
		}
		h.mu.Lock()
		od := pr.docs[req.Doc]
		delete(pr.docs, req.Doc)
		h.mu.Unlock()
		if od == nil {
			return refuse(protocol.DocErrNotOpen, "the document is not open")
		}
		pr.retire(od)
		pr.send(&protocol.DocDone{Type: protocol.DocTypeDone, ReqID: req.ReqID, Doc: req.Doc})
		h.broadcastPresence(od.room, od.id)
		h.broadcastCursorGone(od.room, od.id, pr.p.ID)
		return nil

	case protocol.DocTypeUndo, protocol.DocTypeRedo, protocol.DocTypeRestore:
		if e := pr.checkDoc(req.Doc); e != nil {
			return e
		}
		if !pr.p.CanEdit {
			return refuse(protocol.DocErrReadOnly, "editing needs the editDocs grant")
		}
		var ack collab.Ack
		var err error
		switch {
		case req.Type == protocol.DocTypeUndo:
			ack, err = h.svc.Undo(ctx, req.Doc, pr.p.Identity)
		case req.Type == protocol.DocTypeRedo:
			ack, err = h.svc.Redo(ctx, req.Doc, pr.p.Identity)
		case req.Name != "":
			ack, err = h.svc.RestoreVersion(ctx, req.Doc, pr.p.Identity, req.Name)
		case req.Rev != nil:
			ack, err = h.svc.RestoreRevision(ctx, req.Doc, pr.p.Identity, *req.Rev)
		default:
			return refuse(protocol.DocErrBadMessage, "restore needs a name or a rev")
		}
		if err != nil {
			return serviceErr(err)
		}
		pr.doneAfter(req.Doc, ack.Rev, mustEncode(&protocol.DocDone{Type: protocol.DocTypeDone, ReqID: req.ReqID, Doc: req.Doc, Rev: ack.Rev}))
		return nil

	case protocol.DocTypeName:
		if req.Name == "" {
			return refuse(protocol.DocErrBadMessage, "missing name")
		}
		if e := pr.checkDoc(req.Doc); e != nil {
			return e
		}
		if !pr.p.CanEdit {
			return refuse(protocol.DocErrForbidden, "naming versions needs the editDocs grant")
		}
		rev := int64(-1)
		if req.Rev != nil {
			rev = *req.Rev
		}
		v, err := h.svc.NameVersion(ctx, req.Doc, req.Name, pr.p.Identity, rev)
		if err != nil {
			return serviceErr(err)
		}
		pr.send(&protocol.DocDone{Type: protocol.DocTypeDone, ReqID: req.ReqID, Doc: req.Doc, Rev: v.Rev})
		return nil

	case protocol.DocTypeHistory:
		if e := pr.checkDoc(req.Doc); e != nil {
			return e
		}
		versions, err := h.svc.Versions(ctx, req.Doc)
		if err != nil {
			return serviceErr(err)
		}
		snaps, err := h.svc.Snapshots(ctx, req.Doc)
		if err != nil {
			return serviceErr(err)
		}
		out := &protocol.DocHistory{Type: protocol.DocTypeHistoryR, ReqID: req.ReqID, Doc: req.Doc,
			Versions: []protocol.DocVersion{}, Snapshots: []protocol.DocVersion{}}
		for _, v := range versions {
			out.Versions = append(out.Versions, protocol.DocVersion{Name: v.Name, Rev: v.Rev, Author: v.Author, Created: rfc3339(v.Time)})
		}
		for _, s := range snaps {
			out.Snapshots = append(out.Snapshots, protocol.DocVersion{Rev: s.Rev, Created: rfc3339(s.Time)})
		}
		pr.send(out)
		return nil
	}
	return refuse(protocol.DocErrBadMessage, "unknown message type "+req.Type)
}

// mayManage checks a rename or delete.
func (pr *peer) mayManage(doc string) *docErr {
	if e := pr.checkDoc(doc); e != nil {
		return e
	}
	if !pr.p.CanEdit {
		return refuse(protocol.DocErrForbidden, "managing documents needs the editDocs grant")
	}
	return nil
}

// changed tells the room about a changed document list.
func (pr *peer) changed(req *protocol.DocRequest, doc string) *docErr {
	if err := pr.hub.broadcastDocs(pr.ctx, pr.p.Room, pr, req.ReqID, doc); err != nil {
		return serviceErr(err)
	}
	return nil
}

// doneAfter sends msg once the op of rev has been queued for the client
// (so that undo's op arrives before its done), or now if the client does
// not follow the document.
func (pr *peer) doneAfter(doc string, rev int64, msg []byte) {
	pr.hub.mu.Lock()
	od := pr.docs[doc]
	pr.hub.mu.Unlock()
	if od != nil {
		od.mu.Lock()
		if !od.ended && od.lastRev < rev {
			od.dones = append(od.dones, pendingDone{rev: rev, msg: msg})
			od.mu.Unlock()
			return
		}
		od.mu.Unlock()
	}
	pr.sendControl(msg)
}

// open subscribes first, then answers from the subscription's revision:
// the ops after the client's rev up to it, or the text at it. The stream
// then carries every op after that revision, so nothing is lost or sent
// twice.
func (pr *peer) open(req *protocol.DocRequest) *docErr {
	h, ctx := pr.hub, pr.ctx
	if e := pr.checkDoc(req.Doc); e != nil {
		return e
	}
	s := pr.sender()
	if s == nil {
		return refuse(protocol.DocErrInternal, "no collab channel")
	}
	meta, err := h.svc.Doc(ctx, req.Doc)
	if err != nil {
		return serviceErr(err)
	}
	h.mu.Lock()
	old := pr.docs[req.Doc]
	delete(pr.docs, req.Doc)
	h.mu.Unlock()
	if old != nil {
		pr.retire(old) // reopened (after lagging): the old stream stops here
	}
	sub, err := h.svc.Subscribe(ctx, req.Doc)
	if err != nil {
		if old != nil {
			h.broadcastPresence(old.room, old.id)
		}
		return serviceErr(err)
	}
	opened := &protocol.DocOpened{Type: protocol.DocTypeOpened, ReqID: req.ReqID, Doc: req.Doc, Rev: sub.Rev,
		ReadOnly: !pr.p.CanEdit || meta.ReadOnly}
	if req.Rev != nil && *req.Rev >= 0 && *req.Rev <= sub.Rev {
		// Catch-up ops even when a snapshot would be smaller: a client
		// with unacknowledged edits can only rebase them over ops.
		ops, err := pr.catchUp(req.Doc, *req.Rev, sub.Rev)
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
	if opened.Ops == nil && (req.Rev == nil || *req.Rev != sub.Rev) {
		opened.Text = &sub.Text
	}
	od := &openDoc{id: req.Doc, room: pr.p.Room, sub: sub, start: sub.Rev, lastRev: sub.Rev, s: s}
	h.mu.Lock()
	if pr.left || pr.collab != s {
		h.mu.Unlock()
		sub.Close()
		return nil
	}
	pr.docs[req.Doc] = od
	h.mu.Unlock()
	// opened is queued before the forwarder starts: it precedes every op.
	s.pushControl(mustEncode(opened))
	pr.wg.Add(1)
	go func() {
		defer pr.wg.Done()
		pr.forward(od)
	}()
	if old == nil {
		h.broadcastPresence(od.room, od.id)
	}
	return nil
}

// catchUp returns the ops after rev up to upTo.
func (pr *peer) catchUp(doc string, rev, upTo int64) ([]protocol.DocOp, error) {
	if rev == upTo {
		return []protocol.DocOp{}, nil
	}
	recs, err := pr.hub.svc.OpsSince(pr.ctx, doc, rev)
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
func (pr *peer) forward(od *openDoc) {
	s := od.s
	defer s.forget(od)
	defer func() {
		od.mu.Lock()
		od.ended = true
		dones := od.dones
		od.dones = nil
		od.mu.Unlock()
		for _, d := range dones {
			s.pushControl(d.msg)
		}
	}()
	for rec := range od.sub.C {
		if rec.Rev <= od.start {
			continue
		}
		var msg []byte
		if rec.Author == pr.p.Identity && rec.ClientOpID != "" {
			msg = mustEncode(&protocol.DocAck{Type: protocol.DocTypeAck, Doc: od.id, Rev: rec.Rev, ID: rec.ClientOpID})
		} else {
			op, err := rec.Op.MarshalJSON()
			if err != nil {
				pr.log.warn("unencodable op in log", "doc", od.id, "rev", rec.Rev, "err", err)
				continue
			}
			msg = mustEncode(&protocol.DocOp{Type: protocol.DocTypeOp, Doc: od.id, Rev: rec.Rev, Op: op, Author: rec.Author, ID: rec.ClientOpID})
		}
		if !s.pushOp(od, msg) {
			od.sub.Close() // lagging (queued by the sender), or retired
			return
		}
		od.mu.Lock()
		od.lastRev = rec.Rev
		var due []pendingDone
		kept := od.dones[:0]
		for _, d := range od.dones {
			if d.rev <= rec.Rev {
				due = append(due, d)
			} else {
				kept = append(kept, d)
			}
		}
		od.dones = kept
		od.mu.Unlock()
		for _, d := range due {
			s.pushControl(d.msg)
		}
	}
	switch err := od.sub.Err(); {
	case errors.Is(err, collab.ErrLagging):
		s.dropDoc(od)
	case errors.Is(err, collab.ErrDocDeleted):
		pr.hub.mu.Lock()
		if pr.docs[od.id] == od {
			delete(pr.docs, od.id)
		}
		pr.hub.mu.Unlock()
	}
}

func (pr *peer) submit(data []byte) *docErr {
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
	if !pr.p.CanEdit {
		return refuse(protocol.DocErrReadOnly, "editing needs the editDocs grant")
	}
	if !pr.hasOpen(m.Doc) {
		return refuse(protocol.DocErrNotOpen, "open the document before submitting to it")
	}
	op, err := ot.Parse(m.Op)
	if err != nil {
		return &docErr{code: protocol.DocErrInvalidOp, msg: err.Error(), err: err}
	}
	if *m.Rev < 0 {
		return refuse(protocol.DocErrInvalidOp, "negative base revision")
	}
	ch := pr.hub.svc.SubmitAsync(collab.SubmitRequest{DocID: m.Doc, Author: pr.p.Identity, ClientOpID: m.ID, BaseRev: *m.Rev, Op: op})
	select {
	case pr.results <- pendingSubmit{doc: m.Doc, id: m.ID, ch: ch}:
	case <-pr.ctx.Done():
	}
	return nil
}

// resultLoop reports submit results in the order of the submits. A normal
// ack travels in the document's stream (forward); here come refusals and
// acks of ops applied before (a resubmission after a reconnect).
func (pr *peer) resultLoop() {
	for {
		var ps pendingSubmit
		select {
		case <-pr.ctx.Done():
			return
		case ps = <-pr.results:
		}
		var r collab.Result
		select {
		case <-pr.ctx.Done():
			return
		case r = <-ps.ch:
		}
		switch {
		case r.Err != nil:
			pr.fail(serviceErr(r.Err), "", ps.doc, ps.id)
		case r.Ack.Duplicate:
			pr.send(&protocol.DocAck{Type: protocol.DocTypeAck, Doc: ps.doc, Rev: r.Ack.Rev, ID: ps.id})
		}
	}
}
