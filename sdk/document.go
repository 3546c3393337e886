package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/collab/client"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// CursorInterval is the shortest time between two cursor updates a
// document sends; faster SetCursor calls are coalesced.
const CursorInterval = 50 * time.Millisecond

// ErrDocClosed is returned by a closed Document.
var ErrDocClosed = errors.New("document closed")

// histLen is how many recent server ops a document keeps to move remote
// cursors reported at an older revision.
const histLen = 256

// maxRefusals bounds the refused edits kept for WaitSynced.
const maxRefusals = 16

// Change tells an OnChange callback what happened to a document.
type Change struct {
	// Op is the edit applied to the local text (positions in the local
	// text as it was just before), or nil if only a cursor changed.
	Op ot.Op
	// Rev is the server revision the document is at afterwards.
	Rev int64
	// Author is the identity that made Op ("" for ops the server made:
	// undo, redo, restore; and for rollbacks).
	Author string
	// Rollback is set when Op undoes local edits the server refused (or
	// lost in a reload).
	Rollback bool
	// Cursor names the participant whose cursor moved, appeared or left.
	Cursor string
	// Thread names a comment thread that appeared or changed (not when
	// only its range moved with an edit).
	Thread string
}

// RemoteCursor is another participant's caret or selection, in the local
// text's code point positions.
type RemoteCursor struct {
	Participant string
	Name        string
	Color       string
	Anchor      int
	Head        int
	rev         int64 // the server revision it was reported at
	seq         int64 // the server's number for it (protocol.Cursor.Seq)
}

// DocStats counts what a Document did.
type DocStats struct {
	Sent     int // submit messages sent, resubmissions included
	Acked    int // local ops the server acknowledged (each once)
	Refused  int // local ops the server refused (rolled back)
	Reopened int // re-opens after a reconnect, lagging or a broken stream
	Paused   int // times the server could not store edits and a re-open was scheduled (docoutage.go)
}

// Stats returns the document's counters.
func (d *Document) Stats() DocStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

type histOp struct {
	rev    int64
	op     ot.Op
	author string
}

// Document is an open shared document. Edits apply to the local text at
// once and reach the server in the background (one op in flight, later
// edits composed behind it); remote edits arrive through OnChange. Its
// methods are safe for concurrent use. Positions count Unicode code points.
type Document struct {
	docs *Docs
	id   string

	mu       sync.Mutex
	c        *client.Client
	shadow   *ot.Doc // the server's text at c.Revision()
	opened   bool
	syncing  bool // not following the server's stream: an open is out, or the link is down
	syncGen  uint64
	openReq  string
	fresh    bool // the next open asks for a snapshot
	readOnly bool
	closed   bool
	ready    chan struct{}
	openErr  error
	changed  chan struct{} // closed and replaced on every state change
	refused  []error
	hist     []histOp
	presence []string

	// lastSent is the in-flight op as last sent (id, base revision, op).
	lastSent client.Submission
	// afterInflight is set while the fate of an in-flight op is unknown
	// (a re-open answered with a snapshot): the text the server had once
	// it applied the op, as this client saw it. The op is resubmitted and,
	// once answered, the document is reloaded and the buffered edits are
	// rebased from this text onto the reloaded one.
	afterInflight *string

	sel         ot.Selection
	hasSel      bool
	selDirty    bool
	lastCursor  time.Time
	cursorTimer *time.Timer
	remote      map[string]*RemoteCursor
	early       map[string]*protocol.Cursor // reported at a revision not reached yet
	gone        map[string]int64            // participant -> seq of its last cursorGone (doccursors.go)
	threads     map[string]*threadState     // comment threads (comments.go)

	out    outage // the server could not store edits (docoutage.go)
	stats  DocStats
	sentAt time.Time // when the in-flight op was last sent
	acks   []DocAck  // acknowledgements not yet given to onAck (docack.go)

	cbMu     sync.Mutex // callbacks run one at a time, in order
	onChange func(Change)
	onError  func(error)
	onAck    func(DocAck)
}

func newDocument(d *Docs, id string) *Document {
	return &Document{
		docs: d, id: id, c: client.New("", 0, ""),
		ready: make(chan struct{}), changed: make(chan struct{}),
		remote: map[string]*RemoteCursor{}, early: map[string]*protocol.Cursor{},
		gone: map[string]int64{}, threads: map[string]*threadState{},
	}
}

// ID is the document's id.
func (d *Document) ID() string { return d.id }

// Text is the local text, including edits not yet acknowledged.
func (d *Document) Text() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c.Text()
}

// Len is the local text's length in code points.
func (d *Document) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c.Len()
}

// Rev is the last server revision this document has seen.
func (d *Document) Rev() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c.Revision()
}

// ReadOnly reports whether the server said this client may not edit it.
func (d *Document) ReadOnly() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.readOnly
}

// Pending reports whether local edits await the server's acknowledgement.
func (d *Document) Pending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c.State() != client.Synchronized
}

// Presence lists the participants that have the document open.
func (d *Document) Presence() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.presence...)
}

// OnChange sets a function called after every remote edit, rollback and
// cursor change, one call at a time, on the data channel's goroutine: it
// must not block for long.
func (d *Document) OnChange(fn func(Change)) {
	d.cbMu.Lock()
	d.onChange = fn
	d.cbMu.Unlock()
}

// OnError sets a function that receives edits the server refused (as
// *DocError, after the local rollback) and other errors of this document.
// Without it they go to Docs.OnError. WaitSynced reports refusals too.
func (d *Document) OnError(fn func(error)) {
	d.cbMu.Lock()
	d.onError = fn
	d.cbMu.Unlock()
}

func (d *Document) emit(changes []Change, errs []error) {
	if len(changes) == 0 && len(errs) == 0 {
		return
	}
	d.cbMu.Lock()
	defer d.cbMu.Unlock()
	if d.onChange != nil {
		for _, c := range changes {
			d.onChange(c)
		}
	}
	for _, err := range errs {
		if d.onError != nil {
			d.onError(err)
		} else {
			d.docs.reportError(err)
		}
	}
}

// signalLocked wakes WaitSynced callers.
func (d *Document) signalLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// Insert inserts text at code point pos.
func (d *Document) Insert(pos int, text string) error {
	return d.ApplyOp(ot.Op{}.Retain(pos).Insert(text))
}

// Delete deletes n code points from pos.
func (d *Document) Delete(pos, n int) error {
	return d.ApplyOp(ot.Op{}.Retain(pos).Delete(n))
}

// Replace replaces n code points at pos by text.
func (d *Document) Replace(pos, n int, text string) error {
	return d.ApplyOp(ot.Op{}.Retain(pos).Insert(text).Delete(n))
}

// SetText replaces the whole text by text, as one small edit (common
// prefix and suffix kept).
func (d *Document) SetText(text string) error {
	d.mu.Lock()
	op := ot.Diff(d.c.Text(), text)
	d.mu.Unlock()
	return d.ApplyOp(op)
}

// ApplyOp applies an arbitrary edit to the local text and sends it. An op
// that does not fit the local text fails (ot.ErrInvalidOp) and changes
// nothing. The server may still refuse it later (read-only, ...): then it
// is rolled back and the refusal reported through OnError and WaitSynced.
func (d *Document) ApplyOp(op ot.Op) error {
	d.mu.Lock()
	if d.closed || !d.opened {
		d.mu.Unlock()
		return ErrDocClosed
	}
	if d.out.failed != nil {
		d.mu.Unlock()
		return d.out.failed
	}
	sub, err := d.c.ApplyLocal(op)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	if d.hasSel {
		d.sel = ot.TransformSelection(d.sel, op, true)
		d.selDirty = true
	}
	for _, rc := range d.remote {
		s := ot.TransformSelection(ot.Selection{Anchor: rc.Anchor, Head: rc.Head}, op, false)
		rc.Anchor, rc.Head = s.Anchor, s.Head
	}
	d.moveThreadsLocked(op)
	if sub != nil {
		d.sendSubmitLocked()
	}
	d.signalLocked()
	d.mu.Unlock()
	return nil
}

// sendSubmitLocked sends the in-flight op, expressed against the current
// revision. The in-flight op has been transformed over every remote op
// received since it was made, so (op, Revision()) is what the server needs;
// a resubmission keeps its client op id, so the server applies it at most
// once. (client.Resubmit pairs the transformed op with the original base
// revision, which the server would transform a second time.)
func (d *Document) sendSubmitLocked() {
	inf, ok := d.c.Inflight()
	if !ok || d.syncing || d.closed {
		return
	}
	l, _ := d.docs.currentLink()
	if l == nil {
		return
	}
	op, err := json.Marshal(inf.Op)
	if err != nil {
		d.docs.log.Error("documents: marshal op", "err", err)
		return
	}
	d.stats.Sent++
	d.sentAt = time.Now()
	d.lastSent = client.Submission{ClientOpID: inf.ClientOpID, BaseRev: d.c.Revision(), Op: inf.Op}
	d.docs.sendAsync(l, &protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: d.id, Rev: d.c.Revision(), ID: inf.ClientOpID, Op: op})
}

// WaitSynced returns once every local edit has been acknowledged by the
// server (nothing in flight or buffered, and the document follows the
// server's stream). If the server refused an edit since the last call, it
// returns that refusal (a *DocError) instead; the edit has been rolled
// back. While the server cannot store edits it keeps waiting (they are
// sent again, see ReopenTries); if the document gives up, it returns that
// error (ErrSaveFailed).
func (d *Document) WaitSynced(ctx context.Context) error {
	for {
		d.mu.Lock()
		if len(d.refused) > 0 {
			err := d.refused[0]
			d.refused = d.refused[1:]
			d.mu.Unlock()
			return err
		}
		if d.closed {
			d.mu.Unlock()
			return ErrDocClosed
		}
		if d.out.failed != nil {
			d.mu.Unlock()
			return d.out.failed
		}
		synced := d.opened && !d.syncing && d.c.State() == client.Synchronized
		ch := d.changed
		d.mu.Unlock()
		if synced {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("document %s: waiting for acks: %w", d.id, ctx.Err())
		case <-d.docs.room.ctx.Done():
			return fmt.Errorf("document %s: %w", d.id, context.Cause(d.docs.room.ctx))
		}
	}
}

// Undo asks the server to undo this participant's last edit of the
// document; the undo arrives as a remote edit before Undo returns. Local
// edits are acknowledged first.
func (d *Document) Undo(ctx context.Context) error { return d.history(ctx, protocol.DocTypeUndo) }

// Redo redoes the last undone edit (see Undo).
func (d *Document) Redo(ctx context.Context) error { return d.history(ctx, protocol.DocTypeRedo) }

func (d *Document) history(ctx context.Context, typ string) error {
	if err := d.WaitSynced(ctx); err != nil {
		return err
	}
	_, err := d.docs.request(ctx, &protocol.DocRequest{Type: typ, Doc: d.id})
	return err
}

// Restore makes the document's text that of a named version (or of
// revision rev when name is empty), as a new edit.
func (d *Document) Restore(ctx context.Context, name string, rev int64) error {
	if err := d.WaitSynced(ctx); err != nil {
		return err
	}
	req := &protocol.DocRequest{Type: protocol.DocTypeRestore, Doc: d.id, Name: name}
	if name == "" {
		req.Rev = &rev
	}
	_, err := d.docs.request(ctx, req)
	return err
}

// Close stops following the document. Unacknowledged edits are dropped
// from this client's view (the server may or may not have them).
func (d *Document) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.stopRetryLocked()
	if d.cursorTimer != nil {
		d.cursorTimer.Stop()
		d.cursorTimer = nil
	}
	d.signalLocked()
	d.mu.Unlock()
	d.unregister()
	if l, _ := d.docs.currentLink(); l != nil {
		d.docs.sendAsync(l, &protocol.DocRequest{Type: protocol.DocTypeClose, ReqID: d.docs.nextReqID(), Doc: d.id})
	}
	return nil
}

// unregister takes the document out of the room's open documents, unless a
// later Open of the same id has taken its place.
func (d *Document) unregister() {
	d.docs.mu.Lock()
	if d.docs.open[d.id] == d {
		delete(d.docs.open, d.id)
	}
	d.docs.mu.Unlock()
}

// forget drops a document whose Open gave up.
func (d *Document) forget() {
	d.mu.Lock()
	opened := d.opened
	d.mu.Unlock()
	if !opened {
		_ = d.Close()
	}
}

// handleOp takes one op of the server's stream (someone else's, or a
// server-made undo; or our own, which counts as its ack).
func (d *Document) handleOp(rev int64, id, author string, raw json.RawMessage) {
	d.mu.Lock()
	if !d.opened || d.syncing || d.closed {
		d.mu.Unlock()
		return
	}
	changes, _ := d.receiveLocked(rev, id, author, raw)
	d.signalLocked()
	acks := d.takeAcksLocked()
	d.mu.Unlock()
	d.emit(changes, nil)
	d.emitAcks(acks)
	d.flushCursor()
}

// receiveLocked applies op rev of the server's stream. ok is false when the
// stream broke (a revision was skipped) and a re-open has been started.
func (d *Document) receiveLocked(rev int64, id, author string, raw json.RawMessage) (changes []Change, ok bool) {
	cur := d.c.Revision()
	if rev <= cur {
		return nil, true // seen already (catch-up overlapping the stream)
	}
	if rev != cur+1 {
		d.resyncLocked(fmt.Sprintf("op at revision %d while at %d", rev, cur))
		return nil, false
	}
	op, err := ot.Parse(raw)
	if err != nil {
		d.resyncLocked(fmt.Sprintf("op at revision %d: %v", rev, err))
		return nil, false
	}
	ackID := ""
	if inf, ok := d.c.Inflight(); ok && id != "" && id == inf.ClientOpID && author == d.docs.room.identity() {
		ackID = id
	}
	if _, err := d.shadow.Apply(op); err != nil {
		d.resyncLocked(fmt.Sprintf("op at revision %d: %v", rev, err))
		return nil, false
	}
	view, send, err := d.c.Receive(rev, ackID, op)
	if err != nil {
		d.resyncLocked(fmt.Sprintf("op at revision %d: %v", rev, err))
		return nil, false
	}
	if ackID != "" {
		d.ackedLocked(rev)
		d.progressLocked()
	}
	d.pushHistLocked(rev, op, author)
	if view != nil {
		d.moveCursorsLocked(view, author)
		changes = append(changes, Change{Op: view, Rev: rev, Author: author})
	}
	if send != nil {
		d.sendSubmitLocked()
	}
	return append(changes, d.resolveEarlyLocked()...), true
}

// handleAck: our in-flight op is durable at m.Rev.
func (d *Document) handleAck(m *protocol.DocAck) {
	d.mu.Lock()
	if !d.opened || d.syncing || d.closed {
		d.mu.Unlock()
		return
	}
	cur := d.c.Revision()
	inf, ok := d.c.Inflight()
	var changes []Change
	switch {
	case ok && inf.ClientOpID == m.ID && m.Rev == cur+1:
		if _, err := d.shadow.Apply(inf.Op); err != nil {
			d.resyncLocked(fmt.Sprintf("ack at %d: %v", m.Rev, err))
			break
		}
		if _, err := d.c.Ack(m.Rev, m.ID); err != nil {
			d.resyncLocked(fmt.Sprintf("ack at %d: %v", m.Rev, err))
			break
		}
		d.ackedLocked(m.Rev)
		d.progressLocked()
		d.pushHistLocked(m.Rev, inf.Op, d.docs.room.identity())
		d.sendSubmitLocked()
		changes = d.resolveEarlyLocked()
	case m.Rev <= cur:
		// A duplicate's ack (a resubmission the server had applied before).
	default:
		d.resyncLocked(fmt.Sprintf("ack %s at revision %d while at %d", m.ID, m.Rev, cur))
	}
	d.signalLocked()
	acks := d.takeAcksLocked()
	d.mu.Unlock()
	d.emit(changes, nil)
	d.emitAcks(acks)
	d.flushCursor()
}

// resyncLocked re-opens the document from its revision after the stream
// broke.
func (d *Document) resyncLocked(why string) {
	d.docs.log.Warn("documents: resynchronising", "doc", d.id, "why", why)
	d.syncing = true
	d.openReq = ""
	go d.reopen(true)
}

// handleSubmitError rolls back the in-flight op the server refused. It
// reports false when the error is about some other op.
func (d *Document) handleSubmitError(de *DocError) bool {
	d.mu.Lock()
	inf, ok := d.c.Inflight()
	if !d.opened || d.closed || !ok || inf.ClientOpID != de.OpID {
		d.mu.Unlock()
		return false
	}
	server := d.shadow.String()
	local := d.c.Text()
	rev := d.c.Revision()
	// Local = server · inflight · buffer. Keep the buffer (rebased over the
	// inverse of the refused op) unless the refusal would hit it too.
	var rebased ot.Op
	switch de.Code {
	case protocol.DocErrReadOnly, protocol.DocErrForbidden, protocol.DocErrTooOld, protocol.DocErrUnknownDoc:
	default:
		if afterI, err := ot.Apply(server, inf.Op); err == nil {
			if inv, err := ot.Invert(inf.Op, server); err == nil {
				rebased = ot.Transform(ot.Diff(afterI, local), inv, ot.Right)
			}
		}
	}
	c2 := client.New(d.docs.idPrefix(), rev, server)
	if !rebased.IsNoop() {
		if _, err := c2.ApplyLocal(rebased); err != nil {
			c2 = client.New(d.docs.idPrefix(), rev, server)
		}
	}
	d.c = c2
	view := ot.Diff(local, c2.Text())
	d.moveCursorsLocked(view, "")
	d.refuseLocked(de)
	d.stats.Refused++
	d.sendSubmitLocked()
	if de.Code == protocol.DocErrTooOld {
		d.fresh = true
		d.syncing, d.openReq = true, ""
		go d.reopen(true)
	}
	d.signalLocked()
	rc := Change{Op: view, Rev: rev, Rollback: true}
	d.mu.Unlock()
	d.emit([]Change{rc}, []error{de})
	return true
}

func (d *Document) refuseLocked(err error) {
	if len(d.refused) < maxRefusals {
		d.refused = append(d.refused, err)
	}
}

func (d *Document) pushHistLocked(rev int64, op ot.Op, author string) {
	if len(d.hist) >= histLen {
		d.hist = append(d.hist[:0], d.hist[len(d.hist)-histLen/2:]...)
	}
	d.hist = append(d.hist, histOp{rev, op, author})
}
