package datachannel

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Every kind of bad input gets its docError, changes nothing, and leaves
// the channel working.
func TestBadInput(t *testing.T) {
	e := newEnv(t, Config{MaxMessage: 64 << 10}, collab.Config{KeepOps: 5, SnapshotEvery: 5})
	doc := e.createDoc("d", "abc")
	other, err := e.svc.CreateDoc(context.Background(), collab.CreateRequest{Room: "room2", Title: "elsewhere", Text: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	a := e.join("A", true)
	a.open(doc, nil)

	submit := func(id, op string, rev int64) string {
		return fmt.Sprintf(`{"type":"submit","doc":%q,"rev":%d,"id":%q,"op":%s}`, doc, rev, id, op)
	}
	cases := []struct {
		name string
		send []string // raw frames
		code string
		id   string // client op id the error must carry
	}{
		{"not JSON", []string{"this is not json"}, protocol.DocErrBadMessage, ""},
		{"broken JSON", []string{`{"type":"open","doc":`}, protocol.DocErrBadMessage, ""},
		{"unknown type", []string{`{"type":"frobnicate","reqId":"q"}`}, protocol.DocErrBadMessage, ""},
		{"no type", []string{`{"doc":"x"}`}, protocol.DocErrBadMessage, ""},
		{"open without doc", []string{`{"type":"open","reqId":"q"}`}, protocol.DocErrBadMessage, ""},
		{"submit without id", []string{fmt.Sprintf(`{"type":"submit","doc":%q,"rev":0,"op":["x"]}`, doc)}, protocol.DocErrBadMessage, ""},
		{"submit without rev", []string{fmt.Sprintf(`{"type":"submit","doc":%q,"id":"n1","op":["x"]}`, doc)}, protocol.DocErrBadMessage, "n1"},
		{"chunk out of order", []string{`#7:1:1:{"type":"docList"}`}, protocol.DocErrBadMessage, ""},
		{"whole message inside a chunked one", []string{`#8:0:0:{"type":`, `{"type":"docList"}`}, protocol.DocErrBadMessage, ""},
		{"over the size limit", splitStrings(`{"type":"docCreate","title":"big","text":"`+strings.Repeat("y", 100<<10)+`"}`, 9), protocol.DocErrTooLarge, ""},
		{"unknown document", []string{`{"type":"open","reqId":"q","doc":"nosuchdoc"}`}, protocol.DocErrUnknownDoc, ""},
		{"document of another room", []string{fmt.Sprintf(`{"type":"open","reqId":"q","doc":%q}`, other.ID)}, protocol.DocErrUnknownDoc, ""},
		{"history of another room", []string{fmt.Sprintf(`{"type":"history","reqId":"q","doc":%q}`, other.ID)}, protocol.DocErrUnknownDoc, ""},
		{"op for a document not open", []string{fmt.Sprintf(`{"type":"submit","doc":%q,"rev":0,"id":"n2","op":["x"]}`, other.ID)}, protocol.DocErrNotOpen, "n2"},
		{"malformed op", []string{submit("n3", `[-1]`, 0)}, protocol.DocErrInvalidOp, "n3"},
		{"op past the end", []string{submit("n4", `[10, "x"]`, 0)}, protocol.DocErrInvalidOp, "n4"},
		{"future base revision", []string{submit("n5", `["x"]`, 99)}, protocol.DocErrInvalidOp, "n5"},
		{"close of a document not open", []string{`{"type":"close","reqId":"q","doc":"zzz"}`}, protocol.DocErrNotOpen, ""},
		{"cursor for a document not open", []string{`{"type":"cursor","doc":"zzz","rev":0,"anchor":0,"head":0}`}, protocol.DocErrNotOpen, ""},
		{"cursor without positions", []string{fmt.Sprintf(`{"type":"cursor","doc":%q,"rev":0}`, doc)}, protocol.DocErrBadMessage, ""},
	}
	for _, tc := range cases {
		before := a.errorCount()
		for _, f := range tc.send {
			if err := a.collab.SendText(f); err != nil {
				t.Fatal(err)
			}
		}
		a.waitUntil(tc.name+" error", func() bool { return a.errorCount() > before })
		// The channel still answers.
		list := a.request(protocol.DocRequest{Type: protocol.DocTypeList}, protocol.DocTypeDocs)
		if list.Type != protocol.DocTypeDocs {
			t.Fatalf("%s: channel broken afterwards: %s", tc.name, list.raw)
		}
		var errs []protocol.DocError
		for _, m := range a.messages() {
			if m.Type == protocol.DocTypeError {
				var de protocol.DocError
				m.decode(t, &de)
				errs = append(errs, de)
			}
		}
		errs = errs[before:]
		if len(errs) != 1 || errs[0].Code != tc.code || errs[0].ID != tc.id || errs[0].Message == "" {
			t.Fatalf("%s: got errors %+v, want one %s (id %q)", tc.name, errs, tc.code, tc.id)
		}
	}
	if got := e.text(doc); got.Text != "abc" || got.Rev != 0 {
		t.Fatalf("bad input changed the document: %+v", got)
	}
	docs, _ := e.svc.ListDocs(context.Background(), e.room)
	if len(docs) != 1 {
		t.Fatalf("bad input created documents: %+v", docs)
	}

	// A base revision older than the retained log.
	ctx := context.Background()
	for i := range 20 {
		snap := e.text(doc)
		if _, err := e.svc.Submit(ctx, collab.SubmitRequest{DocID: doc, Author: "bot", ClientOpID: fmt.Sprint(i), BaseRev: snap.Rev, Op: ot.Op{}.Insert("z")}); err != nil {
			t.Fatal(err)
		}
	}
	head := e.text(doc)
	a.send(&protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: doc, Rev: 0, ID: "stale", Op: json.RawMessage(`["q"]`)})
	a.docError("revision_too_old", func(de protocol.DocError) bool { return de.ID == "stale" && de.Code == protocol.DocErrTooOld })
	if got := e.text(doc); got.Text != head.Text || got.Rev != head.Rev {
		t.Fatalf("stale op changed the document")
	}
}

func splitStrings(m string, id uint64) []string {
	var out []string
	for _, f := range protocol.SplitFrames([]byte(m), id, 0) {
		out = append(out, string(f))
	}
	return out
}
