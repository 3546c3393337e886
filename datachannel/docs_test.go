package datachannel

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func decodeList(t *testing.T, m msg) protocol.DocList {
	t.Helper()
	if m.Type != protocol.DocTypeDocs {
		t.Fatalf("want docs, got %s", m.raw)
	}
	var l protocol.DocList
	m.decode(t, &l)
	return l
}

// Create, rename, lock and delete reach everyone in the room (and nobody
// outside it), with the requester's copy carrying its reqId and the doc.
func TestDocumentManagement(t *testing.T) {
	e := newEnv(t, Config{}, collab.Config{})
	a := e.join("A", true)
	admin := e.joinWith(Participant{ID: "Z", Identity: "admin", Name: "Admin", Room: e.room, CanEdit: true, IsAdmin: true}, nil)
	outsider := e.joinWith(Participant{ID: "O", Identity: "o", Name: "O", Room: "room2", CanEdit: true}, nil)

	l := decodeList(t, a.request(protocol.DocRequest{Type: protocol.DocTypeCreate, Title: "Plan", Text: "draft"}, protocol.DocTypeDocs))
	if l.Doc == "" || len(l.Docs) != 1 || l.Docs[0].ID != l.Doc || l.Docs[0].Title != "Plan" || l.Docs[0].Created == "" {
		t.Fatalf("create answer: %+v", l)
	}
	doc := l.Doc
	admin.waitMsg("docs broadcast", func(m msg) bool { return m.Type == protocol.DocTypeDocs && strings.Contains(string(m.raw), `"Plan"`) })
	if o := decodeList(t, outsider.request(protocol.DocRequest{Type: protocol.DocTypeList}, protocol.DocTypeDocs)); len(o.Docs) != 0 {
		t.Fatalf("another room sees %+v", o.Docs)
	}
	if e.text(doc).Text != "draft" {
		t.Fatal("initial text not stored")
	}

	ea := a.edit(doc)
	l = decodeList(t, admin.request(protocol.DocRequest{Type: protocol.DocTypeList}, protocol.DocTypeDocs))
	if len(l.Docs) != 1 || len(l.Docs[0].Editors) != 1 || l.Docs[0].Editors[0] != "A" {
		t.Fatalf("editors: %+v", l.Docs)
	}
	l = decodeList(t, a.request(protocol.DocRequest{Type: protocol.DocTypeRename, Doc: doc, Title: "Final plan"}, protocol.DocTypeDocs))
	if l.Docs[0].Title != "Final plan" {
		t.Fatalf("rename: %+v", l)
	}
	// Locking is for room admins; a locked document refuses edits.
	m := a.request(protocol.DocRequest{Type: protocol.DocTypeLock, Doc: doc, ReadOnly: true}, protocol.DocTypeDocs)
	if m.Type != protocol.DocTypeError || !strings.Contains(string(m.raw), protocol.DocErrForbidden) {
		t.Fatalf("lock by a non-admin: %s", m.raw)
	}
	l = decodeList(t, admin.request(protocol.DocRequest{Type: protocol.DocTypeLock, Doc: doc, ReadOnly: true}, protocol.DocTypeDocs))
	if !l.Docs[0].ReadOnly {
		t.Fatalf("lock: %+v", l)
	}
	a.send(&protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: doc, Rev: 0, ID: "locked1", Op: json.RawMessage(`["x"]`)})
	a.docError("locked", func(de protocol.DocError) bool { return de.ID == "locked1" && de.Code == protocol.DocErrReadOnly })
	if o := a.open(doc, nil); !o.ReadOnly {
		t.Fatal("opened a locked document without readOnly")
	}
	decodeList(t, admin.request(protocol.DocRequest{Type: protocol.DocTypeLock, Doc: doc, ReadOnly: false}, protocol.DocTypeDocs))
	ea = a.edit(doc)
	ea.local(ot.Op{}.Insert("x"))
	ea.settle()

	// The outsider can't touch it.
	for _, req := range []protocol.DocRequest{
		{Type: protocol.DocTypeRename, Doc: doc, Title: "mine"},
		{Type: protocol.DocTypeDelete, Doc: doc},
		{Type: protocol.DocTypeOpen, Doc: doc},
		{Type: protocol.DocTypeUndo, Doc: doc},
	} {
		m := outsider.request(req, "none")
		if !strings.Contains(string(m.raw), protocol.DocErrUnknownDoc) {
			t.Fatalf("%s from another room: %s", req.Type, m.raw)
		}
	}

	// Delete: gone from the list for everyone; opening it fails.
	l = decodeList(t, a.request(protocol.DocRequest{Type: protocol.DocTypeDelete, Doc: doc}, protocol.DocTypeDocs))
	if len(l.Docs) != 0 || l.Doc != doc {
		t.Fatalf("delete: %+v", l)
	}
	admin.waitMsg("empty list", func(m msg) bool {
		return m.Type == protocol.DocTypeDocs && strings.Contains(string(m.raw), `"docs":[]`)
	})
	m = a.request(protocol.DocRequest{Type: protocol.DocTypeOpen, Doc: doc}, protocol.DocTypeOpened)
	if !strings.Contains(string(m.raw), protocol.DocErrUnknownDoc) {
		t.Fatalf("open of a deleted document: %s", m.raw)
	}
}

// Undo, redo, named versions, history and restore; the op of undo and
// restore arrives before its done; a resubmitted op id is acked again
// without being applied twice.
func TestHistoryUndoRestore(t *testing.T) {
	e := newEnv(t, Config{}, collab.Config{})
	doc := e.createDoc("d", "abc")
	a, b := e.join("A", true), e.join("B", true)
	ea := a.edit(doc)
	b.open(doc, nil)

	ea.local(ot.Op{}.Retain(3).Insert("def"))
	ea.settle()
	if m := a.request(protocol.DocRequest{Type: protocol.DocTypeName, Doc: doc, Name: "v1"}, protocol.DocTypeDone); !strings.Contains(string(m.raw), `"rev":1`) {
		t.Fatalf("nameVersion: %s", m.raw)
	}
	if m := a.request(protocol.DocRequest{Type: protocol.DocTypeName, Doc: doc, Name: "v1"}, protocol.DocTypeDone); !strings.Contains(string(m.raw), protocol.DocErrConflict) {
		t.Fatalf("nameVersion twice: %s", m.raw)
	}
	ea.local(ot.Op{}.Retain(6).Insert("ghi"))
	ea.settle()

	// Undo: the op comes as an op (server-made, no id), then done.
	opAt := func(c *tclient, rev string) int {
		for i, m := range c.messages() {
			if m.Type == protocol.DocTypeOp && strings.Contains(string(m.raw), `"rev":`+rev+`,`) {
				return i
			}
		}
		return -1
	}
	done := a.request(protocol.DocRequest{Type: protocol.DocTypeUndo, Doc: doc}, protocol.DocTypeDone)
	if !strings.Contains(string(done.raw), `"rev":3`) {
		t.Fatalf("undo: %s", done.raw)
	}
	doneIdx := slicesIndex(a.messages(), done)
	if i := opAt(a, "3"); i < 0 || i > doneIdx {
		t.Fatalf("undo's op at %d, done at %d", i, doneIdx)
	}
	ea.settle()
	if ea.cl.Text() != "abcdef" || e.text(doc).Text != "abcdef" {
		t.Fatalf("after undo: %q", ea.cl.Text())
	}
	b.waitMsg("B sees the undo", func(m msg) bool { return m.Type == protocol.DocTypeOp && strings.Contains(string(m.raw), `"rev":3,`) })
	if m := a.request(protocol.DocRequest{Type: protocol.DocTypeRedo, Doc: doc}, protocol.DocTypeDone); m.Type != protocol.DocTypeDone {
		t.Fatalf("redo: %s", m.raw)
	}
	ea.settle()
	if ea.cl.Text() != "abcdefghi" {
		t.Fatalf("after redo: %q", ea.cl.Text())
	}
	if m := b.request(protocol.DocRequest{Type: protocol.DocTypeUndo, Doc: doc}, protocol.DocTypeDone); !strings.Contains(string(m.raw), protocol.DocErrConflict) {
		t.Fatalf("undo with nothing to undo: %s", m.raw)
	}

	h := a.request(protocol.DocRequest{Type: protocol.DocTypeHistory, Doc: doc}, protocol.DocTypeHistoryR)
	var hist protocol.DocHistory
	h.decode(t, &hist)
	if len(hist.Versions) != 1 || hist.Versions[0].Name != "v1" || hist.Versions[0].Rev != 1 || hist.Versions[0].Author != "user-A" || hist.Versions[0].Created == "" {
		t.Fatalf("history: %s", h.raw)
	}

	done = a.request(protocol.DocRequest{Type: protocol.DocTypeRestore, Doc: doc, Name: "v1"}, protocol.DocTypeDone)
	if done.Type != protocol.DocTypeDone {
		t.Fatalf("restore: %s", done.raw)
	}
	var d protocol.DocDone
	done.decode(t, &d)
	if i := opAt(a, itoa(d.Rev)); i < 0 || i > slicesIndex(a.messages(), done) {
		t.Fatalf("restore's op after its done")
	}
	ea.settle()
	if ea.cl.Text() != "abcdef" {
		t.Fatalf("after restore: %q", ea.cl.Text())
	}
	if m := a.request(protocol.DocRequest{Type: protocol.DocTypeRestore, Doc: doc, Name: "nope"}, protocol.DocTypeDone); m.Type != protocol.DocTypeError {
		t.Fatalf("restore of an unknown version: %s", m.raw)
	}

	// Resubmitting an applied op (same id, as after a reconnect) is acked
	// again at its original revision and changes nothing.
	rev := e.text(doc).Rev
	a.send(&protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: doc, Rev: rev, ID: "dup", Op: json.RawMessage(`["X"]`)})
	first := a.waitMsg("ack dup", func(m msg) bool { return m.Type == protocol.DocTypeAck && strings.Contains(string(m.raw), `"dup"`) })
	a.send(&protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: doc, Rev: rev, ID: "dup", Op: json.RawMessage(`["X"]`)})
	a.waitUntil("second ack", func() bool {
		n := 0
		for _, m := range a.messages() {
			if m.Type == protocol.DocTypeAck && strings.Contains(string(m.raw), `"dup"`) {
				n++
				if string(m.raw) != string(first.raw) {
					t.Fatalf("duplicate ack differs: %s vs %s", m.raw, first.raw)
				}
			}
		}
		return n == 2
	})
	if got := e.text(doc); got.Text != "Xabcdef" || got.Rev != rev+1 {
		t.Fatalf("duplicate applied twice: %+v", got)
	}
}

func slicesIndex(msgs []msg, m msg) int {
	for i, x := range msgs {
		if string(x.raw) == string(m.raw) {
			return i
		}
	}
	return -1
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
