package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// RawSubmit sends a hand-made submit (which no Document would send) and
// returns the server's answer: *protocol.DocAck or *DocError.
func (d *Docs) RawSubmit(ctx context.Context, doc string, rev int64, id string, op json.RawMessage) (any, error) {
	l, _, err := d.waitLink(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan any, 1)
	d.waitRaw(id, func(m any) { ch <- m })
	data, _ := json.Marshal(&protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: doc, Rev: rev, ID: id, Op: op})
	if err := l.send(ctx, data); err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("raw submit %s: %w", id, ctx.Err())
	}
}

// SetReopenBackoff shortens the retry schedule of documents whose edits the
// server could not store (ReopenTries, ReopenFirstWait, ReopenMaxWait)
// until restore is called.
func SetReopenBackoff(tries int, first, max time.Duration) (restore func()) {
	t, f, m := backoff.tries.Load(), backoff.first.Load(), backoff.max.Load()
	backoff.tries.Store(int64(tries))
	backoff.first.Store(int64(first))
	backoff.max.Store(int64(max))
	return func() { backoff.tries.Store(t); backoff.first.Store(f); backoff.max.Store(m) }
}

// StaleCursor returns participant's cursor as this document last placed
// it, as the server's message that carried it (its revision and seq), to
// be delivered again later with DeliverCursor.
func (d *Document) StaleCursor(participant string) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	rc := d.remote[participant]
	if rc == nil {
		return nil
	}
	data, _ := json.Marshal(&protocol.Cursor{Type: protocol.DocTypeCursor, Doc: d.id, Rev: rc.rev,
		Anchor: rc.Anchor, Head: rc.Head, Participant: rc.Participant, Name: rc.Name, Color: rc.Color, Seq: rc.seq})
	return data
}

// DeliverCursor hands data to the documents as if it had just arrived on
// the cursors channel (a message that the other channel overtook).
func (d *Docs) DeliverCursor(data []byte) { d.onCursors(d.generation(), data) }
