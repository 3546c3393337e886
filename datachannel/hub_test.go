package datachannel

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Two participants type at random places at the same time, each with one
// op in flight; both end with the server's text.
func TestConcurrentEditsConverge(t *testing.T) {
	e := newEnv(t, Config{}, collab.Config{})
	doc := e.createDoc("notes", "hello world")
	a, b := e.join("A", true), e.join("B", true)
	ea, eb := a.edit(doc), b.edit(doc)
	rng := rand.New(rand.NewPCG(1, 2))
	randomEdit := func(ed *editor) {
		ed.pump()
		n := ed.cl.Len()
		pos := rng.IntN(n + 1)
		if n > 0 && rng.IntN(3) == 0 {
			del := 1 + rng.IntN(min(3, n-pos+1))
			if pos+del > n {
				pos = n - del
			}
			ed.local(ot.Op{}.Retain(pos).Delete(del))
			return
		}
		ed.local(ot.Op{}.Retain(pos).Insert(fmt.Sprintf("[%s%d]", ed.c.p.ID, rng.IntN(100))))
	}
	for range 100 {
		randomEdit(ea)
		randomEdit(eb)
	}
	settleAll(ea, eb)
	want := e.text(doc)
	if ea.cl.Text() != want.Text || eb.cl.Text() != want.Text {
		t.Fatalf("diverged:\nA   %q\nB   %q\nsrv %q", ea.cl.Text(), eb.cl.Text(), want.Text)
	}
	if want.Rev < 4 {
		t.Fatalf("server at rev %d after 200 edits", want.Rev)
	}
	// Every op reached each client once, in revision order, as op or ack.
	for _, c := range []*tclient{a, b} {
		var last int64
		for _, m := range c.messages() {
			if m.Type != protocol.DocTypeOp && m.Type != protocol.DocTypeAck {
				continue
			}
			var r struct {
				Rev int64 `json:"rev"`
			}
			m.decode(t, &r)
			if r.Rev != last+1 {
				t.Fatalf("%s: rev %d after %d", c.p.ID, r.Rev, last)
			}
			last = r.Rev
		}
		if last != want.Rev {
			t.Fatalf("%s saw up to rev %d, server at %d", c.p.ID, last, want.Rev)
		}
	}
}

// Acks arrive only for ops that are durable, in order with the others' ops:
// after each ack the op is in the bbolt file (read back by a second store
// after the service is gone).
func TestAcksAreDurableAndOrdered(t *testing.T) {
	e := newEnv(t, Config{}, collab.Config{})
	doc := e.createDoc("d", "")
	a, b := e.join("A", true), e.join("B", true)
	ea, eb := a.edit(doc), b.edit(doc)
	for i := range 30 {
		ea.local(ot.Op{}.Retain(ea.cl.Len()).Insert(fmt.Sprintf("a%d ", i)))
		eb.local(ot.Op{}.Insert(fmt.Sprintf("b%d ", i)))
	}
	settleAll(ea, eb)
	// Every ack A got names a revision whose op is in the store, by A.
	acks := 0
	for _, m := range a.messages() {
		if m.Type != protocol.DocTypeAck {
			continue
		}
		var ack protocol.DocAck
		m.decode(t, &ack)
		recs, err := e.store.Ops(doc, ack.Rev-1, ack.Rev)
		if err != nil || len(recs) != 1 {
			t.Fatalf("ack rev %d not in the store: %v %v", ack.Rev, recs, err)
		}
		if recs[0].Author != "user-A" || recs[0].ClientOpID != ack.ID {
			t.Fatalf("ack rev %d: store has %+v", ack.Rev, recs[0])
		}
		acks++
	}
	if acks == 0 {
		t.Fatal("no acks")
	}
	if ea.cl.Text() != eb.cl.Text() {
		t.Fatalf("diverged: %q vs %q", ea.cl.Text(), eb.cl.Text())
	}
}

// A 1 MB document opens over the channel (chunked), and a 200 KB paste is
// submitted (chunked) and acked.
func TestLargeDocumentAndPaste(t *testing.T) {
	e := newEnv(t, Config{}, collab.Config{})
	big := strings.Repeat("Lorem ipsum dolor sit amet, ünïcödé ✓ 🙂 consectetur.\n", 1<<20/60)
	doc := e.createDoc("big", big)
	a := e.join("A", true)
	ea := a.edit(doc)
	if ea.cl.Text() != big {
		t.Fatalf("opened text differs: %d vs %d code points", len([]rune(ea.cl.Text())), len([]rune(big)))
	}
	a.mu.Lock()
	frames := a.frames
	a.mu.Unlock()
	if frames < 60 {
		t.Fatalf("1 MB came in %d frames; expected chunking", frames)
	}
	paste := strings.Repeat("pasted text ✂ ", 200<<10/16)
	ea.local(ot.Op{}.Retain(5).Insert(paste))
	ea.settle()
	want := e.text(doc)
	if want.Text != ea.cl.Text() || !strings.Contains(want.Text, paste) {
		t.Fatal("paste not applied as sent")
	}
	// A second participant opens the now larger document.
	b := e.join("B", false)
	eb := b.edit(doc)
	if eb.cl.Text() != want.Text {
		t.Fatal("second open differs")
	}
}

// Reopening with a revision gets exactly the ops after it; a revision the
// log no longer holds gets a snapshot; the stream then continues with no
// gap and no duplicate.
func TestOpenCatchUpAndSnapshot(t *testing.T) {
	e := newEnv(t, Config{}, collab.Config{KeepOps: 10, SnapshotEvery: 10})
	doc := e.createDoc("d", "")
	ctx := context.Background()
	submit := func(i int) {
		t.Helper()
		snap := e.text(doc)
		_, err := e.svc.Submit(ctx, collab.SubmitRequest{DocID: doc, Author: "bot", ClientOpID: fmt.Sprint("x", i), BaseRev: snap.Rev,
			Op: ot.Op{}.Retain(len([]rune(snap.Text))).Insert(fmt.Sprint(i, ","))})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		submit(i)
	}
	a := e.join("A", false)
	rev := int64(2)
	o := a.open(doc, &rev)
	if o.Text != nil || len(o.Ops) != 3 || o.Ops[0].Rev != 3 || o.Rev != 5 || !o.ReadOnly {
		t.Fatalf("catch-up open: %+v", o)
	}
	submit(5)
	a.waitMsg("op 6", func(m msg) bool { return m.Type == protocol.DocTypeOp && strings.Contains(string(m.raw), `"rev":6`) })
	// Push the log far past rev 2, then reopen from it: snapshot.
	for i := 6; i < 40; i++ {
		submit(i)
	}
	o = a.open(doc, &rev)
	if o.Text == nil || o.Ops != nil || *o.Text != e.text(doc).Text {
		t.Fatalf("reopen from a compacted revision: %+v", o)
	}
	// Reopen at the current revision: no text, no ops.
	cur := o.Rev
	o = a.open(doc, &cur)
	if o.Text != nil || len(o.Ops) != 0 || o.Rev != cur {
		t.Fatalf("reopen at head: %+v", o)
	}
	submit(40)
	a.waitMsg("op 41", func(m msg) bool { return m.Type == protocol.DocTypeOp && strings.Contains(string(m.raw), `"rev":41`) })
	// Each rev came once after the last opened.
	seen := map[int64]int{}
	msgs := a.messages()
	lastOpened := 0
	for i, m := range msgs {
		if m.Type == protocol.DocTypeOpened {
			lastOpened = i
		}
	}
	for _, m := range msgs[lastOpened+1:] {
		if m.Type == protocol.DocTypeOp {
			var op protocol.DocOp
			m.decode(t, &op)
			seen[op.Rev]++
		}
	}
	if len(seen) != 1 || seen[41] != 1 {
		t.Fatalf("after reopen at head got revs %v, want exactly 41", seen)
	}
}

// A participant without the edit grant sees everyone's edits but cannot
// make any; nothing changes on the server.
func TestReadOnlyParticipant(t *testing.T) {
	e := newEnv(t, Config{}, collab.Config{})
	doc := e.createDoc("d", "abc")
	w, r := e.join("W", true), e.join("R", false)
	ew := w.edit(doc)
	o := r.open(doc, nil)
	if !o.ReadOnly {
		t.Fatal("opened not marked readOnly for a viewer")
	}
	ew.local(ot.Op{}.Retain(3).Insert("def"))
	ew.settle()
	r.waitMsg("writer's op", func(m msg) bool { return m.Type == protocol.DocTypeOp && strings.Contains(string(m.raw), `"def"`) })

	r.send(&protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: doc, Rev: 1, ID: "r1", Op: json.RawMessage(`["x"]`)})
	r.docError("read_only", func(e protocol.DocError) bool { return e.ID == "r1" && e.Code == protocol.DocErrReadOnly })
	for _, typ := range []string{protocol.DocTypeUndo, protocol.DocTypeRestore} {
		m := r.request(protocol.DocRequest{Type: typ, Doc: doc, Name: "v"}, protocol.DocTypeDone)
		var de protocol.DocError
		m.decode(t, &de)
		if m.Type != protocol.DocTypeError || de.Code != protocol.DocErrReadOnly {
			t.Fatalf("%s by a viewer: %s", typ, m.raw)
		}
	}
	for _, req := range []protocol.DocRequest{
		{Type: protocol.DocTypeCreate, Title: "x"},
		{Type: protocol.DocTypeRename, Doc: doc, Title: "x"},
		{Type: protocol.DocTypeDelete, Doc: doc},
		{Type: protocol.DocTypeLock, Doc: doc, ReadOnly: true},
	} {
		m := r.request(req, protocol.DocTypeDocs)
		var de protocol.DocError
		m.decode(t, &de)
		if m.Type != protocol.DocTypeError || de.Code != protocol.DocErrForbidden {
			t.Fatalf("%s by a viewer: %s", req.Type, m.raw)
		}
	}
	if got := e.text(doc); got.Text != "abcdef" || got.Rev != 1 {
		t.Fatalf("viewer changed the document: %+v", got)
	}
	docs, _ := e.svc.ListDocs(context.Background(), e.room)
	if len(docs) != 1 || docs[0].Title != "d" || docs[0].ReadOnly {
		t.Fatalf("viewer changed the list: %+v", docs)
	}
}
