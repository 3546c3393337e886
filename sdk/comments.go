package sdk

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/huddle-rtc/huddle/collab/client"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Thread is a comment thread anchored to a range of a document, in the
// local text's code point positions. The range moves with every edit, as
// another participant's cursor does: an insert at either end stays in
// front of it; a range whose text is deleted collapses.
type Thread struct {
	ID         string
	Start, End int
	Resolved   bool
	Created    time.Time
	Comments   []Comment // the first opened the thread
	// Placed is false while the range is not known in the local text yet
	// (reported at a revision this client has not reached).
	Placed bool
}

// Comment is one message of a thread. Author is the identity.
type Comment struct {
	ID, Author, Name, Text string
	Created, Edited        time.Time
}

// threadState is a thread as the server sent it and its local range.
type threadState struct {
	wire       protocol.CommentThread
	start, end int
	placed     bool
}

// Threads returns the document's comment threads, oldest first.
func (d *Document) Threads() []Thread {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Thread, 0, len(d.threads))
	for _, ts := range d.threads {
		out = append(out, ts.public())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Thread returns one thread.
func (d *Document) Thread(id string) (Thread, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ts := d.threads[id]
	if ts == nil {
		return Thread{}, false
	}
	return ts.public(), true
}

// Comment opens a thread on [start, end) of the local text. It waits until
// the document's own edits are acknowledged, so that the range can be
// named at a server revision.
func (d *Document) Comment(ctx context.Context, start, end int, text string) (Thread, error) {
	var rev int64
	for {
		if err := d.WaitSynced(ctx); err != nil {
			return Thread{}, err
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return Thread{}, ErrDocClosed
		}
		if !d.syncing && d.c.State() == client.Synchronized {
			rev = d.c.Revision()
			n := d.c.Len()
			d.mu.Unlock()
			if start < 0 || end < start || end > n {
				return Thread{}, fmt.Errorf("comment on [%d, %d) of a text of %d code points: %w", start, end, n, ot.ErrInvalidOp)
			}
			break
		}
		d.mu.Unlock()
	}
	return d.threadRequest(ctx, &protocol.CommentRequest{Type: protocol.DocTypeCommentCreate, Doc: d.id, Rev: &rev, Start: &start, End: &end, Text: text})
}

// Reply adds a comment to a thread.
func (d *Document) Reply(ctx context.Context, thread, text string) (Thread, error) {
	return d.threadRequest(ctx, &protocol.CommentRequest{Type: protocol.DocTypeCommentReply, Doc: d.id, Thread: thread, Text: text})
}

// EditComment changes the text of one of this participant's comments.
func (d *Document) EditComment(ctx context.Context, thread, comment, text string) (Thread, error) {
	return d.threadRequest(ctx, &protocol.CommentRequest{Type: protocol.DocTypeCommentEdit, Doc: d.id, Thread: thread, Comment: comment, Text: text})
}

// Resolve marks a thread resolved (or, with false, open again).
func (d *Document) Resolve(ctx context.Context, thread string, resolved bool) (Thread, error) {
	return d.threadRequest(ctx, &protocol.CommentRequest{Type: protocol.DocTypeCommentResolve, Doc: d.id, Thread: thread, Resolved: resolved})
}

func (d *Document) threadRequest(ctx context.Context, req *protocol.CommentRequest) (Thread, error) {
	ans, err := d.docs.roundTrip(ctx, req.Type, func(id string) any { req.ReqID = id; return req })
	if err != nil {
		return Thread{}, err
	}
	up, ok := ans.(*protocol.ThreadUpdate)
	if !ok {
		return Thread{}, fmt.Errorf("documents: %s answered with %T", req.Type, ans)
	}
	if t, ok := d.Thread(up.Thread.ID); ok {
		return t, nil
	}
	return (&threadState{wire: up.Thread}).public(), nil
}

// handleThreads takes threads from the server: all of them after opened
// (threads are never deleted, so the list only adds and refreshes), or
// one that changed.
func (d *Document) handleThreads(ts []protocol.CommentThread) {
	d.mu.Lock()
	if !d.opened || d.closed {
		d.mu.Unlock()
		return
	}
	var changes []Change
	for _, w := range ts {
		st := &threadState{wire: w}
		d.threads[w.ID] = st
		d.placeThreadLocked(st)
		changes = append(changes, Change{Rev: d.c.Revision(), Thread: w.ID})
	}
	d.mu.Unlock()
	d.emit(changes, nil)
}

// placeThreadLocked maps a thread's range at its server revision into the
// local text, as cursorLocked does for cursors; one from a revision not
// reached yet waits.
func (d *Document) placeThreadLocked(st *threadState) bool {
	cur := d.c.Revision()
	if st.wire.Rev > cur || d.syncing {
		st.placed = false
		return false
	}
	sel := ot.Selection{Anchor: st.wire.Start, Head: st.wire.End}
	if st.wire.Rev < cur {
		i := len(d.hist)
		for i > 0 && d.hist[i-1].rev > st.wire.Rev {
			i--
		}
		if i == len(d.hist) || d.hist[i].rev != st.wire.Rev+1 {
			st.placed = false // too old to place; the next update of it will do
			return false
		}
		for _, h := range d.hist[i:] {
			sel = ot.TransformSelection(sel, h.op, false)
		}
	}
	sel, _ = d.c.RemoteSelection(sel, cur)
	n := d.c.Len()
	st.start, st.end = clamp(min(sel.Anchor, sel.Head), n), clamp(max(sel.Anchor, sel.Head), n)
	st.placed = true
	return true
}

func (d *Document) placeEarlyThreadsLocked() []Change {
	var changes []Change
	for id, st := range d.threads {
		if !st.placed && d.placeThreadLocked(st) {
			changes = append(changes, Change{Rev: d.c.Revision(), Thread: id})
		}
	}
	return changes
}

func (d *Document) unplaceThreadsLocked() {
	for _, st := range d.threads {
		st.placed = false
	}
}

// moveThreadsLocked moves the placed ranges through op, an edit of the
// local text.
func (d *Document) moveThreadsLocked(op ot.Op) {
	for _, st := range d.threads {
		if st.placed {
			s := ot.TransformSelection(ot.Selection{Anchor: st.start, Head: st.end}, op, false)
			st.start, st.end = s.Anchor, s.Head
		}
	}
}

func (st *threadState) public() Thread {
	t := Thread{ID: st.wire.ID, Start: st.start, End: st.end, Resolved: st.wire.Resolved, Placed: st.placed,
		Created: parseTime(st.wire.Created)}
	for _, c := range st.wire.Comments {
		t.Comments = append(t.Comments, Comment{ID: c.ID, Author: c.Author, Name: c.Name, Text: c.Text,
			Created: parseTime(c.Created), Edited: parseTime(c.Edited)})
	}
	return t
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}
