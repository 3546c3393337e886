package sdk

// These tests drive the SDK's document client against an in-process stand-in
// for the server's data-channel transport, built on the real collab.Service:
// they check the client's OT, resubmission and rollback logic without WebRTC.
// The end-to-end tests (docs_e2e_test.go) run the same against a real server.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

type fakeHub struct {
	svc  *collab.Service
	room string
}

// fakeConn is one client link: messages in each direction travel through
// bounded queues; dropping it loses whatever is queued, like a cut network.
type fakeConn struct {
	hub      *fakeHub
	docs     *Docs
	gen      uint64
	identity string
	canEdit  bool
	in, out  chan []byte
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	subs     map[string]*collab.Subscription
	wg       sync.WaitGroup
}

type fakeLink struct{ c *fakeConn }

func (l fakeLink) send(ctx context.Context, msg []byte) error {
	select {
	case l.c.in <- append([]byte(nil), msg...):
		return nil
	case <-l.c.ctx.Done():
		return ErrDisconnected
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l fakeLink) trySend(msg []byte) bool { return l.c.ctx.Err() == nil }

func (h *fakeHub) connect(docs *Docs, identity string, canEdit bool) *fakeConn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &fakeConn{hub: h, docs: docs, gen: docs.generation(), identity: identity, canEdit: canEdit,
		in: make(chan []byte, 64), out: make(chan []byte, 4096), ctx: ctx, cancel: cancel, subs: map[string]*collab.Subscription{}}
	c.wg.Add(2)
	go c.serve()
	go c.deliver()
	docs.linkUp(c.gen, fakeLink{c}, fakeLink{c})
	return c
}

func (c *fakeConn) drop() {
	c.cancel()
	c.docs.linkDown(c.gen)
	c.mu.Lock()
	for _, s := range c.subs {
		s.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *fakeConn) deliver() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case m := <-c.out:
			c.docs.onCollab(c.gen, m)
		}
	}
}

func (c *fakeConn) emit(m any) {
	data, _ := json.Marshal(m)
	select {
	case c.out <- data:
	case <-c.ctx.Done():
	}
}

func errCode(err error) string {
	switch {
	case errors.Is(err, collab.ErrUnknownDoc):
		return protocol.DocErrUnknownDoc
	case errors.Is(err, collab.ErrInvalidOp), errors.Is(err, collab.ErrFutureRevision):
		return protocol.DocErrInvalidOp
	case errors.Is(err, collab.ErrRevisionTooOld):
		return protocol.DocErrTooOld
	case errors.Is(err, collab.ErrReadOnly):
		return protocol.DocErrReadOnly
	case errors.Is(err, collab.ErrNothingToUndo), errors.Is(err, collab.ErrNothingToRedo):
		return protocol.DocErrConflict
	}
	return protocol.DocErrInternal
}

func (c *fakeConn) serve() {
	defer c.wg.Done()
	for {
		var data []byte
		select {
		case <-c.ctx.Done():
			return
		case data = <-c.in:
		}
		var env struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(data, &env)
		ctx := c.ctx
		svc := c.hub.svc
		switch env.Type {
		case protocol.DocTypeSubmit:
			var m protocol.DocSubmit
			_ = json.Unmarshal(data, &m)
			if !c.canEdit {
				c.emit(&protocol.DocError{Type: protocol.DocTypeError, Doc: m.Doc, ID: m.ID, Code: protocol.DocErrReadOnly, Message: "no editDocs grant"})
				continue
			}
			op, err := ot.Parse(m.Op)
			if err != nil {
				c.emit(&protocol.DocError{Type: protocol.DocTypeError, Doc: m.Doc, ID: m.ID, Code: protocol.DocErrInvalidOp, Message: err.Error()})
				continue
			}
			ack, err := svc.Submit(ctx, collab.SubmitRequest{DocID: m.Doc, Author: c.identity, ClientOpID: m.ID, BaseRev: m.Rev, Op: op})
			if err != nil {
				c.emit(&protocol.DocError{Type: protocol.DocTypeError, Doc: m.Doc, ID: m.ID, Code: errCode(err), Message: err.Error()})
			} else if ack.Duplicate {
				c.emit(&protocol.DocAck{Type: protocol.DocTypeAck, Doc: m.Doc, Rev: ack.Rev, ID: m.ID})
			}
		default:
			var m protocol.DocRequest
			_ = json.Unmarshal(data, &m)
			c.request(ctx, &m)
		}
	}
}

func (c *fakeConn) request(ctx context.Context, m *protocol.DocRequest) {
	svc := c.hub.svc
	fail := func(err error) {
		c.emit(&protocol.DocError{Type: protocol.DocTypeError, ReqID: m.ReqID, Doc: m.Doc, Code: errCode(err), Message: err.Error()})
	}
	switch m.Type {
	case protocol.DocTypeCreate, protocol.DocTypeList:
		var id string
		if m.Type == protocol.DocTypeCreate {
			meta, err := svc.CreateDoc(ctx, collab.CreateRequest{Room: c.hub.room, Title: m.Title, Text: m.Text})
			if err != nil {
				fail(err)
				return
			}
			id = meta.ID
		}
		metas, _ := svc.ListDocs(ctx, c.hub.room)
		l := protocol.DocList{Type: protocol.DocTypeDocs, ReqID: m.ReqID}
		for _, mt := range metas {
			l.Docs = append(l.Docs, protocol.DocInfo{ID: mt.ID, Title: mt.Title, Created: mt.Created.Format(time.RFC3339Nano)})
		}
		c.emit(struct {
			protocol.DocList
			Doc string `json:"doc,omitempty"`
		}{l, id})
	case protocol.DocTypeOpen:
		sub, err := svc.Subscribe(ctx, m.Doc)
		if err != nil {
			fail(err)
			return
		}
		o := protocol.DocOpened{Type: protocol.DocTypeOpened, ReqID: m.ReqID, Doc: m.Doc, Rev: sub.Rev, ReadOnly: !c.canEdit}
		if m.Rev == nil || *m.Rev < 0 {
			o.Text = &sub.Text
		} else {
			recs, err := svc.OpsSince(ctx, m.Doc, *m.Rev)
			if err != nil {
				sub.Close()
				fail(err)
				return
			}
			for _, r := range recs {
				if r.Rev <= sub.Rev {
					o.Ops = append(o.Ops, protocol.DocOp{Rev: r.Rev, Op: mustJSON(r.Op), Author: r.Author, ID: r.ClientOpID})
				}
			}
		}
		c.mu.Lock()
		if old := c.subs[m.Doc]; old != nil {
			old.Close()
		}
		c.subs[m.Doc] = sub
		c.mu.Unlock()
		c.emit(&o)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer sub.Close()
			for {
				var r collab.OpRecord
				var ok bool
				select {
				case r, ok = <-sub.C:
				case <-c.ctx.Done():
					return
				}
				if !ok {
					return
				}
				if r.Author == c.identity && r.ClientOpID != "" {
					c.emit(&protocol.DocAck{Type: protocol.DocTypeAck, Doc: m.Doc, Rev: r.Rev, ID: r.ClientOpID})
				} else {
					c.emit(&protocol.DocOp{Type: protocol.DocTypeOp, Doc: m.Doc, Rev: r.Rev, Op: mustJSON(r.Op), Author: r.Author, ID: r.ClientOpID})
				}
			}
		}()
	case protocol.DocTypeUndo:
		if _, err := svc.Undo(ctx, m.Doc, c.identity); err != nil {
			fail(err)
			return
		}
		c.emit(&protocol.DocDone{Type: protocol.DocTypeDone, ReqID: m.ReqID, Doc: m.Doc})
	default:
		c.emit(&protocol.DocDone{Type: protocol.DocTypeDone, ReqID: m.ReqID, Doc: m.Doc})
	}
}

func mustJSON(op ot.Op) json.RawMessage {
	b, err := json.Marshal(op)
	if err != nil {
		panic(err)
	}
	return b
}

func newFakeHub(t *testing.T) *fakeHub {
	svc, err := collab.NewService(collab.Config{Store: collab.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &fakeHub{svc: svc, room: "r"}
}

// fakeRoom is the least of a Room that Docs needs.
func fakeRoom(t *testing.T, identity string) *Room {
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(errLeft) })
	r := &Room{ctx: ctx, cancel: cancel, self: protocol.Participant{ID: "PA_" + identity, Identity: identity}}
	r.docs = newDocs(r, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	return r
}

var edits = []string{"a", "é", "😀", "中文", "xy", "👩‍💻", "\n"}

func randomEdit(rng *rand.Rand, doc *Document) error {
	n := doc.Len()
	pos := rng.Intn(n + 1)
	if n > pos && rng.Intn(3) == 0 {
		return doc.Delete(pos, 1+rng.Intn(min(3, n-pos)))
	}
	return doc.Insert(pos, edits[rng.Intn(len(edits))])
}

// checkLog replays the server's op log from revision 0 and checks that it
// gives the server's text and holds no client op id twice.
func checkLog(t *testing.T, svc *collab.Service, docID, initial string) (string, int) {
	t.Helper()
	ctx := context.Background()
	snap, err := svc.Text(ctx, docID)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := svc.OpsSince(ctx, docID, 0)
	if err != nil {
		t.Fatal(err)
	}
	text := initial
	seen := map[string]bool{}
	for i, r := range recs {
		if r.Rev != int64(i+1) {
			t.Fatalf("log revision %d at index %d", r.Rev, i)
		}
		key := r.Author + "/" + r.ClientOpID
		if seen[key] {
			t.Fatalf("op %s is in the log twice", key)
		}
		seen[key] = true
		if text, err = ot.Apply(text, r.Op); err != nil {
			t.Fatal(err)
		}
	}
	if text != snap.Text {
		t.Fatalf("log replay %q != server text %q", text, snap.Text)
	}
	return snap.Text, len(recs)
}

// TestDocsFakeConverge: eight clients edit one document with random delays
// while their links are cut (losing messages both ways) and restored; all
// end with the server's text and every op is logged once.
func TestDocsFakeConverge(t *testing.T) {
	hub := newFakeHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const nc = 8
	rooms := make([]*Room, nc)
	conns := make([]*fakeConn, nc)
	for i := range rooms {
		rooms[i] = fakeRoom(t, fmt.Sprintf("u%d", i))
		conns[i] = hub.connect(rooms[i].docs, fmt.Sprintf("u%d", i), true)
	}
	info, err := rooms[0].docs.Create(ctx, "notes", "héllo 🌍")
	if err != nil {
		t.Fatal(err)
	}
	docs := make([]*Document, nc)
	for i := range docs {
		if docs[i], err = rooms[i].docs.Open(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var connMu sync.Mutex
	for i := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(i)))
			for step := 0; step < 150; step++ {
				if err := randomEdit(rng, docs[i]); err != nil {
					t.Error(err)
					return
				}
				if rng.Intn(4) == 0 {
					time.Sleep(time.Duration(rng.Intn(3)) * time.Millisecond)
				}
				if i < 3 && rng.Intn(40) == 0 { // cut and restore the link mid-edit
					connMu.Lock()
					conns[i].drop()
					conns[i] = hub.connect(rooms[i].docs, fmt.Sprintf("u%d", i), true)
					connMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i, d := range docs {
		if err := d.WaitSynced(ctx); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	want, nops := checkLog(t, hub.svc, info.ID, "héllo 🌍")
	waitForT(t, "every client at the server's text", 10*time.Second, func() bool {
		for _, d := range docs {
			if d.Text() != want {
				return false
			}
		}
		return true
	})
	t.Logf("%d ops in the log, %d code points", nops, len([]rune(want)))
}

// TestDocsFakeReadOnlyRollback: a refused edit (and the edits buffered
// behind it) is rolled back, reported by WaitSynced and OnError, and the
// document equals the server's text.
func TestDocsFakeReadOnlyRollback(t *testing.T) {
	hub := newFakeHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := fakeRoom(t, "writer")
	hub.connect(w.docs, "writer", true)
	r := fakeRoom(t, "reader")
	hub.connect(r.docs, "reader", false)
	info, err := w.docs.Create(ctx, "t", "abc")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := r.docs.Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !doc.ReadOnly() {
		t.Error("not reported read-only")
	}
	var reported []error
	var mu sync.Mutex
	doc.OnError(func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() })
	if err := doc.Insert(1, "XY"); err != nil {
		t.Fatal(err)
	}
	_ = doc.Insert(0, "Z")
	if err := doc.WaitSynced(ctx); !IsDocError(err, protocol.DocErrReadOnly) {
		t.Fatalf("WaitSynced = %v, want read_only", err)
	}
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if got := doc.Text(); got != "abc" {
		t.Fatalf("after rollback %q, want abc", got)
	}
	waitForT(t, "OnError to report the refusal", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reported) > 0 && IsDocError(reported[0], protocol.DocErrReadOnly)
	})
	if snap, _ := hub.svc.Text(ctx, info.ID); snap.Text != "abc" || snap.Rev != 0 {
		t.Fatalf("server changed: %+v", snap)
	}
}

// TestDocsFakeInvalidRollback: the server refuses the in-flight op as
// invalid; it is undone but the edits buffered behind it survive.
func TestDocsFakeInvalidRollback(t *testing.T) {
	hub := newFakeHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := fakeRoom(t, "writer")
	c := hub.connect(w.docs, "writer", true)
	info, err := w.docs.Create(ctx, "t", "hello")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := w.docs.Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Hold the server's queue so the next two edits are in flight and
	// buffered, then answer the first with a refusal.
	c.drop()
	_ = doc.Insert(5, "!")
	_ = doc.Insert(0, "¡")
	inf, _ := doc.c.Inflight()
	w.docs.onCollab(w.docs.generation(), mustMarshal(&protocol.DocError{Type: protocol.DocTypeError, Doc: info.ID, ID: inf.ClientOpID, Code: protocol.DocErrInvalidOp, Message: "test"}))
	if got := doc.Text(); got != "¡hello" {
		t.Fatalf("after rollback %q, want ¡hello", got)
	}
	hub.connect(w.docs, "writer", true)
	if err := doc.WaitSynced(ctx); !IsDocError(err, protocol.DocErrInvalidOp) {
		t.Fatalf("WaitSynced = %v, want invalid_op", err)
	}
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if text, _ := checkLog(t, hub.svc, info.ID, "hello"); text != "¡hello" || doc.Text() != text {
		t.Fatalf("server %q, client %q", text, doc.Text())
	}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func waitForT(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
