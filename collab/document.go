package collab

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// Why a goroutine per open document (and not a mutex): the writer owns the
// document's state outright, so no lock is held while it waits on fsync;
// callers queue behind it on a channel, and the writer can take every op
// already queued and commit them in one transaction (group commit) — with a
// mutex each op would pay its own fsync. The goroutine also owns the idle
// timer that unloads the document. Reads (Text, OpsSince, Subscribe) go
// through the same queue, so they always see every op queued before them,
// committed.

// A request is held by value in the inbox (no allocation per op): it is
// an op to apply when fn is nil.
type request struct {
	sub  submission              // an op to apply, or
	fn   func(d *document) error // any other action, run after queued ops are committed
	done chan error              // fn's result
}

type submission struct {
	req SubmitRequest
	// build, if set, makes the op on the writer from the current state (undo,
	// redo, restore); its op is against the current head.
	build func(d *document) (op ot.Op, cause Cause, target int64, err error)
	// The result goes to reply (SubmitAsync) or to notify (SubmitFunc).
	reply  chan Result
	notify func(SubmitRequest, Result)
}

// answer delivers the submission's result; it never blocks (reply has
// room for one, and notify must not block).
func (s *submission) answer(res Result) {
	if s.notify != nil {
		s.notify(s.req, res)
		return
	}
	s.reply <- res
}

type undoStacks struct{ undo, redo []int64 } // revisions, newest last

type pendingReply struct {
	to  submission
	res Result
}

// document is one open document. Everything but pending is owned by its
// writer goroutine.
type document struct {
	svc     *Service
	id      string
	inbox   *inbox
	pending int // requests enqueued but not finished; guarded by svc.mu

	failErr  error // set when the document cannot be used (missing, deleted, broken store)
	meta     DocMeta
	text     *ot.Doc
	bytes    int // UTF-8 size of text
	head     int64
	first    int64                  // oldest revision retained in the store's log (head+1 when empty)
	tail     []OpRecord             // the newest ops, ascending and ending at head
	lastSnap int64                  // revision of the newest automatic snapshot
	undo     map[string]*undoStacks // nil until the first undo or redo (loadUndo)
	subs     map[*Subscription]struct{}

	// staged are the ops applied in memory and not yet committed: always
	// the end of tail (a slice of it, so each record is built once).
	staged  []OpRecord
	replies []pendingReply
	now     time.Time // the time of this wake-up, stamped on the ops it applies
}

func newDocument(s *Service, id string) *document {
	// The inbox bounds what a document's submitters may queue: one group
	// commit's worth (inbox.go).
	return &document{svc: s, id: id, inbox: newInbox(s.cfg.MaxBatch)}
}

// load (re)builds the in-memory state from the store: the newest snapshot,
// then the ops after it, and nothing older, so an open costs the same
// whatever the length of the history. De-duplication starts from the
// snapshot's ops, like everything else: a resubmission is matched against
// the ops it missed (dedup.go); undo stacks are built from the retained log on the first undo or redo.
func (d *document) load() error {
	st := d.svc.store
	meta, err := st.Doc(d.id)
	if err != nil {
		return err
	}
	snap, ok, err := st.Snapshot(d.id, math.MaxInt64)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("load %s: no snapshot in store", d.id)
	}
	first, last, err := st.LogBounds(d.id)
	if err != nil {
		return err
	}
	ops, err := st.Ops(d.id, snap.Rev, math.MaxInt64)
	if err != nil {
		return err
	}
	// Reset only what the writer owns: pending belongs to svc.mu, and the
	// subscribers and held replies of a batch outlive a reload.
	d.failErr = nil
	d.meta, d.text, d.head, d.lastSnap = meta, ot.NewDoc(snap.Text), snap.Rev, snap.Rev
	d.bytes = len(snap.Text)
	d.undo, d.staged = nil, nil
	if d.subs == nil {
		d.subs = map[*Subscription]struct{}{}
	}
	for _, r := range ops {
		if r.Rev > snap.Rev {
			if r.Rev != d.head+1 {
				return fmt.Errorf("load %s: log has revision %d after %d", d.id, r.Rev, d.head)
			}
			inv, err := d.text.Apply(r.Op)
			if err != nil {
				return fmt.Errorf("load %s: replay revision %d: %w", d.id, r.Rev, err)
			}
			d.bytes += insertedBytes(r.Op) - insertedBytes(inv)
			d.head = r.Rev
		}
		d.remember(r)
	}
	d.tail = ops
	if n := len(ops); n == 0 || ops[n-1].Rev != d.head {
		d.tail = nil
	}
	d.trimTail()
	d.first = d.head + 1
	if last > 0 {
		d.first = first
	}
	return nil
}

// remember indexes a logged op for undo (once the stacks are built).
func (d *document) remember(r OpRecord) {
	if d.undo != nil {
		d.rememberUndo(r)
	}
}

// loadUndo builds the undo stacks from the retained log, once per load.
func (d *document) loadUndo() error {
	if d.undo != nil {
		return nil
	}
	committed := d.head - int64(len(d.staged))
	ops, err := d.svc.store.Ops(d.id, d.first-1, committed)
	if err != nil {
		return fmt.Errorf("undo history: %w", err)
	}
	d.undo = map[string]*undoStacks{}
	for _, r := range ops {
		d.rememberUndo(r)
	}
	for _, r := range d.staged {
		d.rememberUndo(r)
	}
	return nil
}

func (d *document) rememberUndo(r OpRecord) {
	st := d.undo[r.Author]
	if st == nil {
		st = &undoStacks{}
		d.undo[r.Author] = st
	}
	depth := d.svc.cfg.UndoDepth
	push := func(s []int64, rev int64) []int64 {
		s = append(s, rev)
		if len(s) > depth {
			s = s[len(s)-depth:]
		}
		return s
	}
	pop := func(s []int64, rev int64) []int64 {
		if n := len(s); n > 0 && s[n-1] == rev {
			return s[:n-1]
		}
		return s
	}
	switch r.Cause {
	case CauseUndo:
		st.undo = pop(st.undo, r.Target)
		st.redo = push(st.redo, r.Rev)
	case CauseRedo:
		st.redo = pop(st.redo, r.Target)
		st.undo = push(st.undo, r.Rev)
	default:
		st.undo = push(st.undo, r.Rev)
		st.redo = nil
	}
}

func (d *document) trimTail() {
	// In place: the newest KeepOps move to the front of the same array
	// (a new 2*KeepOps+MaxBatch array each time was a third of the bytes
	// the in-memory replay allocated). Slices of tail never leave the
	// writer: OpsSince and CatchUp copy theirs (service.go), and the
	// staged records are broadcast before this runs.
	if k := d.svc.cfg.KeepOps; len(d.tail) > 2*k {
		n := copy(d.tail, d.tail[len(d.tail)-k:])
		clear(d.tail[n:])
		d.tail = d.tail[:n]
	}
}

// run is the writer goroutine.
func (d *document) run() {
	defer d.svc.wg.Done()
	if err := d.load(); staleCopy(err) {
		d.dropStale(err) // stale.go: the next request tries again
	} else if err != nil {
		d.fail(fmt.Errorf("document %q: %w", d.id, err), err)
	}
	idle := time.NewTimer(d.svc.cfg.IdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-d.inbox.wake:
			reqs := d.inbox.take()
			if len(reqs) == 0 {
				continue // a token left from requests an earlier take got
			}
			d.handle(reqs)
			d.inbox.recycle(reqs)
			if d.finish(len(reqs)) {
				return
			}
			idle.Reset(d.svc.cfg.IdleTimeout)
		case <-idle.C:
			if d.tryUnload() {
				return
			}
			idle.Reset(d.svc.cfg.IdleTimeout)
		case <-d.svc.ctx.Done():
			d.drainClosed()
			return
		}
	}
}

// handle processes the requests of one wake-up (everything queued, at most
// MaxBatch), committing all their ops together.
func (d *document) handle(reqs []request) {
	d.now = d.svc.cfg.Now() // one clock read per wake-up, not per op
	for _, r := range reqs {
		if r.fn == nil {
			d.stage(&r.sub)
			continue
		}
		d.flush()
		err := d.failErr
		if err == nil {
			if err = r.fn(d); errors.Is(err, ErrFenced) || errors.Is(err, ErrConflict) {
				d.dropStale(err) // stale.go
			}
		}
		r.done <- err
	}
	d.flush()
}

// finish marks n requests done; a failed document unloads as soon as
// nothing is queued for it. It reports whether the writer has exited.
func (d *document) finish(n int) bool {
	d.svc.mu.Lock()
	d.pending -= n
	d.svc.mu.Unlock()
	if d.failErr != nil {
		return d.tryUnload()
	}
	return false
}

// tryUnload removes an idle document (nothing queued, no live subscriber)
// from memory; the next request loads it again from the store.
func (d *document) tryUnload() bool {
	for sub := range d.subs {
		if sub.isClosed() {
			delete(d.subs, sub)
		}
	}
	d.svc.mu.Lock()
	defer d.svc.mu.Unlock()
	if d.pending > 0 || len(d.subs) > 0 {
		return false
	}
	if d.svc.docs[d.id] == d { // a stale copy was replaced already (stale.go)
		delete(d.svc.docs, d.id)
	}
	return true
}

// drainClosed answers requests still queued at shutdown with ErrClosed.
func (d *document) drainClosed() {
	for sub := range d.subs {
		sub.end(ErrClosed)
	}
	for {
		d.svc.mu.Lock()
		if d.pending == 0 {
			if d.svc.docs[d.id] == d {
				delete(d.svc.docs, d.id)
			}
			d.svc.mu.Unlock()
			return
		}
		d.svc.mu.Unlock()
		reqs := d.inbox.take()
		if len(reqs) == 0 {
			<-d.inbox.wake // a request counted in pending is on its way
			continue
		}
		for _, r := range reqs {
			if r.fn == nil {
				r.sub.answer(Result{Err: fmt.Errorf("submit %s: %w", d.id, ErrClosed)})
			} else {
				r.done <- ErrClosed
			}
		}
		d.inbox.recycle(reqs)
		d.svc.mu.Lock()
		d.pending -= len(reqs)
		d.svc.mu.Unlock()
	}
}

// fail makes the document unusable: requests get err, subscribers subErr.
func (d *document) fail(err, subErr error) {
	d.failErr = err
	for sub := range d.subs {
		sub.end(subErr)
		delete(d.subs, sub)
	}
}

// stage validates, transforms and applies one op in memory. Its reply is
// held until the op is committed (flush).
func (d *document) stage(s *submission) {
	res := d.apply(s)
	if res.Err != nil {
		res.Err = fmt.Errorf("submit %s: %w", d.id, res.Err)
	}
	d.replies = append(d.replies, pendingReply{*s, res})
}

func (d *document) apply(s *submission) Result {
	if d.failErr != nil {
		return Result{Err: d.failErr}
	}
	if d.meta.ReadOnly {
		return Result{Err: ErrReadOnly}
	}
	req := s.req
	op, cause, target := req.Op, CauseEdit, int64(0)
	if s.build != nil {
		var err error
		if op, cause, target, err = s.build(d); err != nil {
			return Result{Err: err}
		}
	} else {
		if err := op.Validate(); err != nil {
			return Result{Err: err}
		}
		if err := d.checkOpSize(op); err != nil {
			return Result{Err: err}
		}
		missed, err := d.opsSince(req.BaseRev)
		if err != nil {
			if dup, ok := d.duplicateTooOld(req, err); ok {
				return dup
			}
			return Result{Err: err}
		}
		if dup, ok := duplicateIn(missed, req); ok {
			return dup
		}
		for _, m := range missed {
			op = ot.Transform(op, m.Op, ot.Right) // the logged op wins insert ties
		}
	}
	if op.BaseLen() > d.text.Len() { // checkDocSize reads the text the op walks
		return Result{Err: fmt.Errorf("at revision %d (base %d): %w: op spans %d code points, the document has %d", d.head, req.BaseRev, ErrInvalidOp, op.BaseLen(), d.text.Len())}
	}
	if err := d.checkDocSize(op); err != nil {
		return Result{Err: err}
	}
	inv, err := d.text.Apply(op)
	if err != nil {
		return Result{Err: fmt.Errorf("at revision %d (base %d): %w", d.head, req.BaseRev, err)}
	}
	d.bytes += insertedBytes(op) - insertedBytes(inv)
	op = op.Normalize()
	d.head++
	d.tail = append(d.tail, OpRecord{Rev: d.head, Author: req.Author, ClientOpID: req.ClientOpID, Op: op, Inverse: inv,
		Cause: cause, Target: target, Time: d.now})
	d.staged = d.tail[len(d.tail)-len(d.staged)-1:]
	rec := &d.tail[len(d.tail)-1]
	d.remember(*rec)
	return Result{Ack: Ack{Rev: rec.Rev, Op: op}}
}

// flush commits the staged ops (with a snapshot and compaction when due),
// then answers their submitters and broadcasts them, in that order.
func (d *document) flush() {
	if len(d.staged) > 0 {
		cfg := d.svc.cfg
		c := Commit{Ops: d.staged}
		if d.head-d.lastSnap >= int64(cfg.SnapshotEvery) {
			c.Snapshot = &Snapshot{Rev: d.head, Text: d.text.String(), Time: cfg.Now()}
			c.KeepSnapshots = cfg.KeepSnapshots
			if drop := d.head - int64(cfg.KeepOps) + 1; drop > d.first {
				c.DropOpsBefore = drop
			}
		}
		began := time.Now()
		err := d.svc.store.Commit(d.id, c)
		if cfg.OnCommit != nil {
			cfg.OnCommit(len(c.Ops), time.Since(began), err)
		}
		if err != nil {
			d.commitFailed(err)
		} else {
			if c.Snapshot != nil {
				d.lastSnap = c.Snapshot.Rev
			}
			if c.DropOpsBefore > 0 {
				d.compacted(c.DropOpsBefore)
			}
			for i := range d.replies {
				d.replies[i].to.answer(d.replies[i].res)
			}
			clear(d.replies)
			d.replies = d.replies[:0]
			d.broadcast(d.staged)
			d.trimTail() // after the broadcast: staged is a slice of tail
		}
		// The records stay in tail (the store and the subscribers took
		// them by value); nothing is staged now.
		d.staged = nil
	}
	for i := range d.replies {
		d.replies[i].to.answer(d.replies[i].res)
	}
	clear(d.replies)
	d.replies = d.replies[:0]
}

// commitFailed fails every op of the batch (none is acknowledged) and
// rebuilds the in-memory state from what the store holds.
func (d *document) commitFailed(err error) {
	d.svc.cfg.Logger.Error("collab: commit failed", "doc", d.id, "err", err)
	for i := range d.replies {
		if d.replies[i].res.Err == nil {
			d.replies[i].res = Result{Err: fmt.Errorf("submit %s: commit: %w", d.id, err)}
		}
	}
	if staleCopy(err) {
		d.dropStale(err) // stale.go
		return
	}
	d.staged = nil
	if lerr := d.load(); lerr != nil {
		d.fail(fmt.Errorf("document %s: reload after failed commit: %w", d.id, lerr), lerr)
	}
}

// compacted forgets what the store no longer holds (ops before rev).
func (d *document) compacted(rev int64) {
	d.first = rev
	for _, st := range d.undo {
		for len(st.undo) > 0 && st.undo[0] < rev {
			st.undo = st.undo[1:]
		}
		for len(st.redo) > 0 && st.redo[0] < rev {
			st.redo = st.redo[1:]
		}
	}
}

// broadcast hands recs to every subscriber, each record with one shared
// encoding for all of them (SharedEncoding). A subscriber that lags is
// dropped and gets nothing more.
func (d *document) broadcast(recs []OpRecord) {
	if len(d.subs) == 0 {
		return
	}
	for _, r := range recs {
		if len(d.subs) > 1 {
			r.shared = &sharedEncoding{}
		}
		for sub := range d.subs {
			if !sub.send(r) {
				delete(d.subs, sub)
			}
		}
	}
}

// opsSince returns the ops after rev, from the in-memory tail when it
// reaches back far enough, else from the store plus the uncommitted tail.
// The result must not be modified.
func (d *document) opsSince(rev int64) ([]OpRecord, error) {
	switch {
	case rev > d.head:
		return nil, fmt.Errorf("revision %d, document at %d: %w", rev, d.head, ErrFutureRevision)
	case rev == d.head:
		return nil, nil
	case rev < 0 || rev+1 < d.first:
		return nil, fmt.Errorf("revision %d, oldest retained op is %d: %w", rev, d.first, ErrRevisionTooOld)
	}
	if n := len(d.tail); n > 0 && d.tail[0].Rev <= rev+1 {
		return d.tail[rev+1-d.tail[0].Rev:], nil
	}
	committed := d.head - int64(len(d.staged))
	ops, err := d.svc.store.Ops(d.id, rev, committed)
	if err != nil {
		return nil, err
	}
	if int64(len(ops)) != committed-rev {
		return nil, fmt.Errorf("revision %d: store returned %d ops, want %d: %w", rev, len(ops), committed-rev, ErrRevisionTooOld)
	}
	return append(ops, d.staged...), nil
}

// record returns the logged op at rev.
func (d *document) record(rev int64) (OpRecord, error) {
	ops, err := d.opsSince(rev - 1)
	if err != nil {
		return OpRecord{}, err
	}
	if len(ops) == 0 || ops[0].Rev != rev {
		return OpRecord{}, errors.New("record not found")
	}
	return ops[0], nil
}
