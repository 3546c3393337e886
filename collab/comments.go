package collab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// Comment threads anchored to a range of a document. A thread's range is
// kept as positions at a revision and moves through every later op exactly
// as another participant's cursor does (ot.TransformSelection, not own):
// an insert at either end stays in front of that end, so text inserted at
// the start lands inside the range and at the end outside it; a range
// whose text is deleted collapses to the point of the deletion. Clients
// move ranges the same way, so everyone agrees. Threads are rebased
// to the document's head and saved whenever they are read or changed, so
// they never depend on log entries that compaction may prune.

// CommentThread is one thread.
type CommentThread struct {
	ID       string    `json:"id"`
	Rev      int64     `json:"rev"` // Start and End are code point positions at Rev
	Start    int       `json:"start"`
	End      int       `json:"end"`
	Resolved bool      `json:"resolved,omitempty"`
	Created  time.Time `json:"created"`
	Comments []Comment `json:"comments"` // the first opened the thread
}

// Comment is one message of a thread.
type Comment struct {
	ID      string    `json:"id"`
	Author  string    `json:"author"` // identity
	Name    string    `json:"name"`
	Text    string    `json:"text"`
	Created time.Time `json:"created"`
	Edited  time.Time `json:"edited,omitzero"`
}

// CommentStore is what comments need of persistence; BoltStore and
// MemStore (store_comments.go) and RedisStore (store_redis_comments.go)
// implement it. PutThread is durable when it
// returns.
type CommentStore interface {
	PutThread(docID string, t CommentThread) error
	Threads(docID string) ([]CommentThread, error) // oldest first
}

// Errors of comments, beside the service's.
var (
	ErrUnknownThread = errors.New("unknown comment thread")
	ErrNotAuthor     = errors.New("only its author may edit a comment")
	ErrCommentLimit  = errors.New("comment limit reached")
)

// CommentLimits bound what comments a client can make the server hold.
// Zero values pick the defaults in brackets.
type CommentLimits struct {
	MaxText     int // code points in one comment [4000]
	MaxThreads  int // threads per document, resolved ones included [500]
	MaxComments int // comments per thread [200]
	// MaxBytes bounds the comment text of one document, all threads
	// together, so that the counts above cannot multiply into gigabytes
	// [4 MiB].
	MaxBytes int
}

// Comments keeps the comment threads of a Service's documents.
type Comments struct {
	svc   *Service
	store CommentStore
	lim   CommentLimits
	now   func() time.Time

	mu sync.Mutex // one change at a time: read, rebase, write back
}

// NewComments returns the comments of svc's documents, kept in its store.
func NewComments(svc *Service, lim CommentLimits) (*Comments, error) {
	store, ok := svc.cfg.Store.(CommentStore)
	if !ok {
		return nil, fmt.Errorf("comments: the store %T cannot keep comments", svc.cfg.Store)
	}
	if lim.MaxText <= 0 {
		lim.MaxText = 4000
	}
	if lim.MaxThreads <= 0 {
		lim.MaxThreads = 500
	}
	if lim.MaxComments <= 0 {
		lim.MaxComments = 200
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = 4 << 20
	}
	return &Comments{svc: svc, store: store, lim: lim, now: time.Now}, nil
}

// Limits are the bounds in force.
func (c *Comments) Limits() CommentLimits { return c.lim }

// Threads returns doc's threads, their ranges at the document's head.
func (c *Comments) Threads(ctx context.Context, doc string) ([]CommentThread, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rebased(ctx, doc)
}

// NewThread opens a thread on [start, end) of doc as the author saw it at
// revision rev, with a first comment.
func (c *Comments) NewThread(ctx context.Context, doc string, rev int64, start, end int, author, name, text string) (CommentThread, error) {
	if err := c.checkText(text); err != nil {
		return CommentThread{}, err
	}
	if start < 0 || end < start || rev < 0 {
		return CommentThread{}, fmt.Errorf("new thread in %s: range [%d, %d) at %d: %w", doc, start, end, rev, ErrBadRequest)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ts, err := c.rebased(ctx, doc)
	if err != nil {
		return CommentThread{}, err
	}
	if len(ts) >= c.lim.MaxThreads {
		return CommentThread{}, fmt.Errorf("new thread in %s: %d threads: %w", doc, len(ts), ErrCommentLimit)
	}
	if err := c.checkBytes(ts, len(text)); err != nil {
		return CommentThread{}, err
	}
	now := c.now().UTC()
	t := CommentThread{ID: newID(), Rev: rev, Start: start, End: end, Created: now,
		Comments: []Comment{{ID: newID(), Author: author, Name: name, Text: text, Created: now}}}
	if err := c.rebase(ctx, doc, &t, true); err != nil {
		return CommentThread{}, err
	}
	return t, c.put(doc, t)
}

// Reply adds a comment to a thread.
func (c *Comments) Reply(ctx context.Context, doc, thread, author, name, text string) (CommentThread, error) {
	if err := c.checkText(text); err != nil {
		return CommentThread{}, err
	}
	return c.change(ctx, doc, thread, func(t *CommentThread) error {
		if len(t.Comments) >= c.lim.MaxComments {
			return fmt.Errorf("reply in %s: %d comments: %w", thread, len(t.Comments), ErrCommentLimit)
		}
		t.Comments = append(t.Comments, Comment{ID: newID(), Author: author, Name: name, Text: text, Created: c.now().UTC()})
		return nil
	})
}

// Edit changes the text of one of the author's comments.
func (c *Comments) Edit(ctx context.Context, doc, thread, comment, author, text string) (CommentThread, error) {
	if err := c.checkText(text); err != nil {
		return CommentThread{}, err
	}
	return c.change(ctx, doc, thread, func(t *CommentThread) error {
		for i := range t.Comments {
			if t.Comments[i].ID != comment {
				continue
			}
			if t.Comments[i].Author != author {
				return fmt.Errorf("edit %s: %w", comment, ErrNotAuthor)
			}
			t.Comments[i].Text, t.Comments[i].Edited = text, c.now().UTC()
			return nil
		}
		return fmt.Errorf("edit %s in %s: %w", comment, thread, ErrUnknownThread)
	})
}

// Resolve marks a thread resolved, or open again.
func (c *Comments) Resolve(ctx context.Context, doc, thread string, resolved bool) (CommentThread, error) {
	return c.change(ctx, doc, thread, func(t *CommentThread) error {
		t.Resolved = resolved
		return nil
	})
}

func (c *Comments) change(ctx context.Context, doc, thread string, fn func(*CommentThread) error) (CommentThread, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts, err := c.rebased(ctx, doc)
	if err != nil {
		return CommentThread{}, err
	}
	before := textBytes(ts)
	for _, t := range ts {
		if t.ID != thread {
			continue
		}
		old := textBytes([]CommentThread{t})
		if err := fn(&t); err != nil {
			return CommentThread{}, err
		}
		if grown := textBytes([]CommentThread{t}) - old; grown > 0 {
			if before+grown > c.lim.MaxBytes {
				return CommentThread{}, fmt.Errorf("thread %s of %s: %d bytes of comments: %w", thread, doc, before, ErrCommentLimit)
			}
		}
		return t, c.put(doc, t)
	}
	return CommentThread{}, fmt.Errorf("thread %s of %s: %w", thread, doc, ErrUnknownThread)
}

// checkBytes refuses adding n bytes of text to threads ts.
func (c *Comments) checkBytes(ts []CommentThread, n int) error {
	if have := textBytes(ts); have+n > c.lim.MaxBytes {
		return fmt.Errorf("%d bytes of comments: %w", have, ErrCommentLimit)
	}
	return nil
}

func textBytes(ts []CommentThread) int {
	n := 0
	for _, t := range ts {
		for _, cm := range t.Comments {
			n += len(cm.Text)
		}
	}
	return n
}

func (c *Comments) checkText(text string) error {
	n := utf8.RuneCountInString(text)
	switch {
	case n == 0:
		return fmt.Errorf("empty comment: %w", ErrBadRequest)
	case n > c.lim.MaxText:
		return fmt.Errorf("comment of %d code points, limit %d: %w", n, c.lim.MaxText, ErrCommentLimit)
	case !utf8.ValidString(text):
		return fmt.Errorf("comment is not UTF-8: %w", ErrBadRequest)
	}
	return nil
}

// rebased loads doc's threads and moves each to the head, saving those
// that moved; under c.mu. The log is read once, from the oldest thread's
// revision.
func (c *Comments) rebased(ctx context.Context, doc string) ([]CommentThread, error) {
	if _, err := c.svc.Doc(ctx, doc); err != nil {
		return nil, err
	}
	ts, err := c.store.Threads(doc)
	if err != nil || len(ts) == 0 {
		return ts, err
	}
	oldest := ts[0].Rev
	for _, t := range ts {
		oldest = min(oldest, t.Rev)
	}
	ops, err := c.svc.OpsSince(ctx, doc, oldest)
	tooOld := errors.Is(err, ErrRevisionTooOld) // each thread falls back in rebase
	if err != nil && !tooOld {
		return nil, err
	}
	for i := range ts {
		t := &ts[i]
		before := t.Rev
		if tooOld {
			if err := c.rebase(ctx, doc, t, false); err != nil {
				return nil, err
			}
		} else {
			moveRange(t, ops)
		}
		if t.Rev != before {
			if err := c.put(doc, *t); err != nil {
				return nil, err
			}
		}
	}
	return ts, nil
}

// moveRange moves t's range through those of ops after t.Rev.
func moveRange(t *CommentThread, ops []OpRecord) {
	sel := ot.Selection{Anchor: t.Start, Head: t.End}
	for _, r := range ops {
		if r.Rev <= t.Rev {
			continue
		}
		sel = ot.TransformSelection(sel, r.Op, false)
		t.Rev = r.Rev
	}
	t.Start, t.End = min(sel.Anchor, sel.Head), max(sel.Anchor, sel.Head)
}

// rebase moves t's range through the ops after t.Rev to the head. check
// refuses a range past the end of the text at t.Rev (a new thread's).
func (c *Comments) rebase(ctx context.Context, doc string, t *CommentThread, check bool) error {
	var snap Snapshot
	if check {
		var err error
		if snap, err = c.svc.Text(ctx, doc); err != nil {
			return err
		}
	}
	ops, err := c.svc.OpsSince(ctx, doc, t.Rev)
	switch {
	case errors.Is(err, ErrRevisionTooOld) && !check:
		// The ops are gone: keep the positions, clamped to the text.
		snap, err := c.svc.Text(ctx, doc)
		if err != nil {
			return err
		}
		n := utf8.RuneCountInString(snap.Text)
		t.Start, t.End, t.Rev = min(t.Start, n), min(t.End, n), snap.Rev
		return nil
	case err != nil:
		return err
	}
	if check {
		// The length at t.Rev: the head's, walked back over the ops.
		n := utf8.RuneCountInString(snap.Text)
		for _, r := range ops {
			if r.Rev <= snap.Rev {
				n -= r.Op.Delta()
			}
		}
		if t.End > n {
			return fmt.Errorf("new thread [%d, %d) in a text of %d code points: %w", t.Start, t.End, n, ErrBadRequest)
		}
	}
	moveRange(t, ops)
	return nil
}

func (c *Comments) put(doc string, t CommentThread) error {
	if err := c.store.PutThread(doc, t); err != nil {
		return fmt.Errorf("save thread %s of %s: %w", t.ID, doc, err)
	}
	return nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
