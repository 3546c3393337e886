// Package collab is Huddle's shared-document service: server-authoritative
// OT (see collab/ot) with one serial writer per open document, a durable
// revision log with snapshots in a Store, de-duplication of resubmitted ops,
// catch-up, subscriptions, version history and per-author undo.
//
// The transport (data channels) sits on top of this API: it turns client
// messages into Submit / OpsSince / Subscribe calls and maps the sentinel
// errors in errors.go to protocol error codes. Authorization is the
// caller's job: the service trusts the room, author and document ids it is
// given. A document can be locked read-only (SetReadOnly); a caller that
// wants per-participant read-only access simply does not call Submit for
// participants without the edit grant.
package collab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// Config tunes the service. Zero values pick the defaults in brackets.
type Config struct {
	Store Store // required

	SnapshotEvery int // ops between automatic snapshots [500]
	// KeepOps is the minimum number of most recent ops kept in the log;
	// a client whose base revision is older gets ErrRevisionTooOld and
	// must reload the document [5000]. Also bounds the in-memory tail.
	KeepOps         int
	KeepSnapshots   int           // automatic snapshots kept per document [50]
	IdleTimeout     time.Duration // an open document with no requests and no subscribers is unloaded after this [5m]
	SubscriberQueue int           // ops buffered per subscriber before it is dropped as lagging [1024]
	MaxBatch        int           // ops persisted in one commit at most [4096]
	UndoDepth       int           // undo entries kept per author [200]
	// MaxDocBytes bounds a document's text in UTF-8 bytes: an op or a
	// new document that would exceed it is refused with ErrTooLarge
	// (ops that do not grow the text are always accepted) [8 MiB].
	MaxDocBytes int
	// MaxOpBytes bounds one op: the bytes it inserts plus 8 per
	// component; larger ops are refused with ErrTooLarge [4 MiB].
	MaxOpBytes int
	Logger     *slog.Logger
	// OnDocChange, if set, hears of each created ("created") and deleted
	// ("deleted") document, after the store has it; it must not block
	// (the server's webhooks and event stream only queue).
	OnDocChange func(change string, meta DocMeta)
	// OnCommit, if set, hears of each group commit on a document's writer
	// goroutine: how many ops, how long the store took, and its error. It
	// must not block (metrics).
	OnCommit func(ops int, took time.Duration, err error)
	Now      func() time.Time // clock, for tests [time.Now]
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.SnapshotEvery, 500)
	def(&c.KeepOps, 5000)
	def(&c.KeepSnapshots, 50)
	def(&c.SubscriberQueue, 1024)
	def(&c.MaxBatch, 4096)
	def(&c.UndoDepth, 200)
	def(&c.MaxDocBytes, 8<<20)
	def(&c.MaxOpBytes, 4<<20)
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service is the document service. Its methods are safe for concurrent use.
type Service struct {
	cfg    Config
	store  Store
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	docs   map[string]*document // open (loaded or loading) documents
}

// NewService starts a document service over cfg.Store. The store stays the
// caller's: Close does not close it.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("collab: Config.Store is required")
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, store: cfg.Store, ctx: ctx, cancel: cancel, docs: map[string]*document{}}, nil
}

// Close stops every document writer after the batch it is committing;
// requests still queued fail with ErrClosed. Every op acknowledged before
// Close is already durable.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// OpenDocs is the number of documents currently loaded in memory.
func (s *Service) OpenDocs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.docs)
}

// CreateRequest describes a new document.
type CreateRequest struct {
	ID    string // optional; a random id is made if empty
	Room  string
	Title string
	Text  string // initial text (revision 0)
}

// CreateDoc creates a document in a room.
func (s *Service) CreateDoc(ctx context.Context, req CreateRequest) (DocMeta, error) {
	if req.Room == "" {
		return DocMeta{}, fmt.Errorf("create document: %w: empty room", ErrBadRequest)
	}
	if len(req.Text) > s.cfg.MaxDocBytes {
		return DocMeta{}, fmt.Errorf("create document: %w: text of %d bytes, the limit is %d", ErrTooLarge, len(req.Text), s.cfg.MaxDocBytes)
	}
	if req.ID == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return DocMeta{}, fmt.Errorf("create document: %w", err)
		}
		req.ID = hex.EncodeToString(b[:])
	}
	now := s.cfg.Now()
	meta := DocMeta{ID: req.ID, Room: req.Room, Title: req.Title, Created: now}
	if err := s.store.CreateDoc(meta, Snapshot{Rev: 0, Text: req.Text, Time: now}); err != nil {
		return DocMeta{}, fmt.Errorf("create document %s: %w", req.ID, err)
	}
	if s.cfg.OnDocChange != nil {
		s.cfg.OnDocChange("created", meta)
	}
	return meta, nil
}

// ListDocs lists a room's documents, oldest first.
func (s *Service) ListDocs(ctx context.Context, room string) ([]DocMeta, error) {
	docs, err := s.store.Docs(room)
	if err != nil {
		return nil, fmt.Errorf("list documents of room %s: %w", room, err)
	}
	return docs, nil
}

// Doc returns a document's metadata.
func (s *Service) Doc(ctx context.Context, docID string) (DocMeta, error) {
	var meta DocMeta
	err := s.run(ctx, docID, func(d *document) error { meta = d.meta; return nil })
	if err != nil {
		return DocMeta{}, fmt.Errorf("document %s: %w", docID, err)
	}
	return meta, nil
}

// RenameDoc changes a document's title.
func (s *Service) RenameDoc(ctx context.Context, docID, title string) error {
	err := s.run(ctx, docID, func(d *document) error {
		m := d.meta
		m.Title = title
		if err := s.store.UpdateDoc(m); err != nil {
			return err
		}
		d.meta = m
		return nil
	})
	if err != nil {
		return fmt.Errorf("rename %s: %w", docID, err)
	}
	return nil
}

// SetReadOnly locks or unlocks a document: while locked, every op-making
// call (Submit, Undo, Redo, Restore...) fails with ErrReadOnly.
func (s *Service) SetReadOnly(ctx context.Context, docID string, readOnly bool) error {
	err := s.run(ctx, docID, func(d *document) error {
		m := d.meta
		m.ReadOnly = readOnly
		if err := s.store.UpdateDoc(m); err != nil {
			return err
		}
		d.meta = m
		return nil
	})
	if err != nil {
		return fmt.Errorf("set read-only %s: %w", docID, err)
	}
	return nil
}

// DeleteDoc deletes a document with all its history. Its subscribers are
// closed with ErrDocDeleted.
func (s *Service) DeleteDoc(ctx context.Context, docID string) error {
	meta, _ := s.store.Doc(docID) // for OnDocChange; run reports a missing document
	err := s.run(ctx, docID, func(d *document) error {
		if err := s.store.DeleteDoc(docID); err != nil {
			return err
		}
		d.fail(fmt.Errorf("document %q: %w", docID, ErrUnknownDoc), ErrDocDeleted)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", docID, err)
	}
	if s.cfg.OnDocChange != nil {
		s.cfg.OnDocChange("deleted", meta)
	}
	return nil
}

// SubmitRequest is one client op.
type SubmitRequest struct {
	DocID      string
	Author     string // participant identity; undo is per author
	ClientOpID string // unique per author; a resubmission with the same id is not applied twice
	BaseRev    int64  // the revision the client made the op against
	Op         ot.Op
}

// Ack is the answer to an applied op.
type Ack struct {
	Rev       int64 // the revision the op produced
	Op        ot.Op // the op as applied (transformed over ops the client had not seen)
	Duplicate bool  // the op had been applied before; this is its original ack
}

// Result is what SubmitAsync delivers.
type Result struct {
	Ack Ack
	Err error
}

// Submit transforms op over the log since BaseRev, applies it, makes it
// durable and only then returns the ack; subscribers receive the applied
// op after that. If ctx ends first, Submit returns ctx.Err() but the op may
// still be applied: resubmit it with the same ClientOpID to learn its fate.
func (s *Service) Submit(ctx context.Context, req SubmitRequest) (Ack, error) {
	return wait(ctx, s.SubmitAsync(req))
}

// SubmitAsync queues req and returns a channel that receives its result.
// Calls made one after another from one goroutine are applied in that
// order, so a client may pipeline ops (op n+1 with BaseRev n+1 sent
// before op n is acked); the writer then commits them in one transaction.
func (s *Service) SubmitAsync(req SubmitRequest) <-chan Result {
	return s.submitAsync(submission{req: req, reply: make(chan Result, 1)})
}

// SubmitFunc is SubmitAsync with a callback in place of the channel, for
// a transport that pipelines many ops: done is called exactly once with
// req and its result, on the document's writer goroutine once the op is
// committed (or on the caller's, when req is refused before it is
// queued). done must not block: it runs between the commit and the next
// batch. Results of ops to one document come in submit order. Nothing is
// allocated per op (a channel and a submission each were three of the
// replay's four allocations per op, docs/COLLAB.md "Throughput").
func (s *Service) SubmitFunc(req SubmitRequest, done func(SubmitRequest, Result)) {
	s.submitAsync(submission{req: req, notify: done})
}

func (s *Service) submitAsync(sub submission) <-chan Result {
	if sub.req.Author == "" {
		sub.answer(Result{Err: fmt.Errorf("submit %s: %w: empty author", sub.req.DocID, ErrBadRequest)})
		return sub.reply
	}
	if err := s.enqueue(sub.req.DocID, request{sub: sub}); err != nil {
		sub.answer(Result{Err: fmt.Errorf("submit %s: %w", sub.req.DocID, err)})
	}
	return sub.reply
}

func wait(ctx context.Context, ch <-chan Result) (Ack, error) {
	select {
	case r := <-ch:
		return r.Ack, r.Err
	case <-ctx.Done():
		return Ack{}, ctx.Err()
	}
}

// Text returns the current text and revision.
func (s *Service) Text(ctx context.Context, docID string) (Snapshot, error) {
	var snap Snapshot
	err := s.run(ctx, docID, func(d *document) error {
		snap = Snapshot{Rev: d.head, Text: d.text.String(), Time: s.cfg.Now()}
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("text of %s: %w", docID, err)
	}
	return snap, nil
}

// OpsSince returns the ops after revision rev, for a client catching up.
// A rev older than the retained log fails with ErrRevisionTooOld: the
// client must reload the text instead.
func (s *Service) OpsSince(ctx context.Context, docID string, rev int64) ([]OpRecord, error) {
	var ops []OpRecord
	err := s.run(ctx, docID, func(d *document) error {
		var err error
		ops, err = d.opsSince(rev)
		ops = slices.Clone(ops) // the writer reuses its tail's array
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ops of %s since %d: %w", docID, rev, err)
	}
	return ops, nil
}

// CatchUp brings a client at revision rev up to date: the ops after rev
// if the log still holds them, else (the client is too far behind, or
// behind a compaction) a snapshot of the current text to reload from, with
// ops nil. Exactly one of ops and snap is set on success.
func (s *Service) CatchUp(ctx context.Context, docID string, rev int64) (ops []OpRecord, snap *Snapshot, err error) {
	err = s.run(ctx, docID, func(d *document) error {
		var err error
		ops, err = d.opsSince(rev)
		ops = slices.Clone(ops) // the writer reuses its tail's array
		if errors.Is(err, ErrRevisionTooOld) {
			ops, err = nil, nil
			snap = &Snapshot{Rev: d.head, Text: d.text.String(), Time: s.cfg.Now()}
		} else if err == nil && ops == nil {
			ops = []OpRecord{}
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("catch up %s from %d: %w", docID, rev, err)
	}
	return ops, snap, nil
}

// Subscribe returns the current text and revision together with a stream
// of every op applied after it (see Subscription).
func (s *Service) Subscribe(ctx context.Context, docID string) (*Subscription, error) {
	var sub *Subscription
	err := s.run(ctx, docID, func(d *document) error {
		sub = newSubscription(d.head, d.text.String(), s.cfg.SubscriberQueue)
		d.subs[sub] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", docID, err)
	}
	return sub, nil
}

// run executes fn on the document's writer goroutine, after every op queued
// before it has been committed, and waits for it.
func (s *Service) run(ctx context.Context, docID string, fn func(d *document) error) error {
	done := make(chan error, 1)
	if err := s.enqueue(docID, request{fn: fn, done: done}); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue hands r to the document's writer, starting (loading) it if it is
// not open. pending keeps the writer from unloading while r is in flight.
func (s *Service) enqueue(docID string, r request) error {
	if docID == "" {
		return fmt.Errorf("%w: empty document id", ErrBadRequest)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	d := s.docs[docID]
	if d == nil {
		d = newDocument(s, docID)
		s.docs[docID] = d
		s.wg.Add(1)
		go d.run()
	}
	d.pending++
	s.mu.Unlock()
	d.inbox.push(r) // waits only while the writer's inbox is full: backpressure
	return nil
}
