package sdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

var docEdits = []string{"a", "é", "😀", "中文", "xy", "👩‍💻", "\n", "Ω"}

func randomDocEdit(rng *rand.Rand, doc *sdk.Document) error {
	n := doc.Len()
	pos := rng.Intn(n + 1)
	switch {
	case n > pos && rng.Intn(3) == 0:
		return doc.Delete(pos, 1+rng.Intn(min(4, n-pos)))
	case n > pos && rng.Intn(8) == 0:
		return doc.Replace(pos, 1, docEdits[rng.Intn(len(docEdits))])
	}
	return doc.Insert(pos, docEdits[rng.Intn(len(docEdits))])
}

// serverLog replays a document's op log from revision 0 and checks that
// it gives the server's text and that no client op id is in it twice. It
// returns the text and the number of ops.
func serverLog(t *testing.T, svc *collab.Service, docID, initial string) (string, int) {
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
	text, seen := initial, map[string]bool{}
	for i, r := range recs {
		if r.Rev != int64(i+1) {
			t.Fatalf("log has revision %d at index %d", r.Rev, i)
		}
		if r.ClientOpID != "" {
			key := r.Author + "/" + r.ClientOpID
			if seen[key] {
				t.Fatalf("op %s is in the log twice", key)
			}
			seen[key] = true
		}
		if text, err = ot.Apply(text, r.Op); err != nil {
			t.Fatalf("log replay at revision %d: %v", r.Rev, err)
		}
	}
	if text != snap.Text {
		t.Fatalf("log replay differs from the server's text")
	}
	return snap.Text, len(recs)
}

// TestDocsConcurrentEditsWithReconnect: eight bots edit one document at
// once over the data channels, with random edits (non-ASCII, emoji, ZWJ
// sequences) and random small pauses, while two of them lose their
// connections mid-edit and reconnect by themselves. Every bot ends with the
// server's text, the log replays to it and holds no op twice, and a fresh
// bot opening the document sees the same text.
func TestDocsConcurrentEditsWithReconnect(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const nc, steps = 8, 400
	rooms := make([]*sdk.Room, nc)
	var reconnects atomic.Int32
	for i := range rooms {
		rooms[i] = join(t, ctx, srv, fmt.Sprintf("bot%d", i), "docs", sdk.Options{
			OnReconnect: func(protocol.Participant) { reconnects.Add(1) },
		})
	}
	const initial = "Shared notes: héllo 🌍\n"
	info, err := rooms[0].Docs().Create(ctx, "notes", initial)
	if err != nil {
		t.Fatal(err)
	}
	docs := make([]*sdk.Document, nc)
	for i := range docs {
		if docs[i], err = rooms[i].Docs().Open(ctx, info.ID); err != nil {
			t.Fatalf("bot%d opens: %v", i, err)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(i + 1)))
			for step := 0; step < steps; step++ {
				if err := randomDocEdit(rng, docs[i]); err != nil {
					t.Errorf("bot%d edit: %v", i, err)
					return
				}
				if rng.Intn(2) == 0 {
					time.Sleep(time.Duration(rng.Intn(4000)) * time.Microsecond)
				}
				if i < 2 && step == steps/4*(i+1) {
					rooms[i].DropConnection() // mid-edit: in-flight ops and acks are lost
				}
			}
		}()
	}
	wg.Wait()
	for i, d := range docs {
		if err := d.WaitSynced(ctx); err != nil {
			t.Fatalf("bot%d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	want, nops := serverLog(t, srv.Documents(), info.ID, initial)
	waitFor(t, "every bot to hold the server's text", 30*time.Second, func() bool {
		for _, d := range docs {
			if d.Text() != want {
				return false
			}
		}
		return true
	})
	// Every acknowledged op is in the log exactly once: the log holds no
	// client op id twice (serverLog), and as many client ops as were acked.
	acked, sent, logged := 0, 0, 0
	for _, d := range docs {
		st := d.Stats()
		acked += st.Acked
		sent += st.Sent
		if i := slices.Index(docs, d); i < 2 && st.Reopened == 0 {
			t.Errorf("bot%d did not re-open the document after its drop", i)
		}
		if st.Refused != 0 {
			t.Errorf("%s: %d ops refused", d.ID(), st.Refused)
		}
	}
	recs, err := srv.Documents().OpsSince(ctx, info.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ClientOpID != "" {
			logged++
		}
	}
	if acked != logged {
		t.Fatalf("%d ops acknowledged, %d client ops in the log", acked, logged)
	}
	if n := reconnects.Load(); n < 2 {
		t.Errorf("%d reconnects, want 2", n)
	}
	fresh := join(t, ctx, srv, "late", "docs", sdk.Options{})
	fd, err := fresh.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fd.Text() != want || fd.Rev() != int64(nops) {
		t.Fatalf("fresh bot: rev %d (server %d), text equal %v", fd.Rev(), nops, fd.Text() == want)
	}
	t.Logf("%d bots x %d edits in %v: %d submits sent (resubmissions included), %d ops acked and logged (%.0f ops/s, %.0f edits/s), %d code points",
		nc, steps, elapsed.Round(time.Millisecond), sent, nops, float64(nops)/elapsed.Seconds(), float64(nc*steps)/elapsed.Seconds(), len([]rune(want)))
}

// TestDocsLargeDocument: a 1 MB document opens, and a 200 KB paste is
// applied, acknowledged and reaches a second bot.
func TestDocsLargeDocument(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	a := join(t, ctx, srv, "alice", "big", sdk.Options{})
	b := join(t, ctx, srv, "bob", "big", sdk.Options{})
	line := "Ünïcödé line with emoji 🎉 and CJK 文字, padded to make a long document.\n"
	big := strings.Repeat(line, 1<<20/len(line)+1)[:1<<20]
	big = strings.ToValidUTF8(big, "")
	created := time.Now()
	info, err := a.Docs().Create(ctx, "big", big)
	if err != nil {
		t.Fatal(err)
	}
	tCreate := time.Since(created)
	opened := time.Now()
	da, err := a.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	tOpen := time.Since(opened)
	if da.Text() != big {
		t.Fatalf("opened %d bytes, want %d", len(da.Text()), len(big))
	}
	db, err := b.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	paste := strings.Repeat("pasted ✂️ text, ", 200<<10/len("pasted ✂️ text, "))
	pos := da.Len() / 2
	pasted := time.Now()
	if err := da.Insert(pos, paste); err != nil {
		t.Fatal(err)
	}
	if err := da.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	tPaste := time.Since(pasted)
	want := string([]rune(big)[:pos]) + paste + string([]rune(big)[pos:])
	snap, err := srv.Documents().Text(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Text != want || da.Text() != want {
		t.Fatal("server or author text differs after the paste")
	}
	waitFor(t, "bob to get the paste", 30*time.Second, func() bool { return db.Text() == want })
	t.Logf("create 1 MB %v, open %v, 200 KB paste acked in %v", tCreate.Round(time.Millisecond), tOpen.Round(time.Millisecond), tPaste.Round(time.Millisecond))
}

// TestDocsBadInput: edits the server must refuse (unknown document,
// read-only participant, invalid op, base revision ahead of the document)
// each get their error and change nothing; the SDK rolls refused edits
// back.
func TestDocsBadInput(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := join(t, ctx, srv, "writer", "bad", sdk.Options{})
	info, err := w.Docs().Create(ctx, "t", "héllo")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := w.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Insert(5, " wörld"); err != nil {
		t.Fatal(err)
	}
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	svc := srv.Documents()
	before, err := svc.Text(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		now, err := svc.Text(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if now.Rev != before.Rev || now.Text != before.Text {
			t.Fatalf("%s changed the document: rev %d -> %d", what, before.Rev, now.Rev)
		}
	}
	expect := func(what string, ans any, err error, codes ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		de, ok := ans.(*sdk.DocError)
		if !ok {
			t.Fatalf("%s: answered %#v, want a docError", what, ans)
		}
		for _, c := range codes {
			if de.Code == c {
				t.Logf("%s: %s: %s", what, de.Code, de.Message)
				unchanged(what)
				return
			}
		}
		t.Fatalf("%s: code %s (%s), want %v", what, de.Code, de.Message, codes)
	}

	// Unknown document: opening fails, and so does an op.
	if _, err := w.Docs().Open(ctx, "no-such-doc"); !sdk.IsDocError(err, protocol.DocErrUnknownDoc) {
		t.Fatalf("open unknown document: %v", err)
	}
	ans, err := w.Docs().RawSubmit(ctx, "no-such-doc", 0, "raw-1", json.RawMessage(`["x"]`))
	expect("op for an unknown document", ans, err, protocol.DocErrUnknownDoc, protocol.DocErrNotOpen)

	// Invalid ops: past the end, malformed.
	ans, err = w.Docs().RawSubmit(ctx, info.ID, before.Rev, "raw-2", json.RawMessage(`[1000,"x"]`))
	expect("op past the end", ans, err, protocol.DocErrInvalidOp)
	ans, err = w.Docs().RawSubmit(ctx, info.ID, before.Rev, "raw-3", json.RawMessage(`[0,{"d":-1}]`))
	expect("malformed op", ans, err, protocol.DocErrInvalidOp, protocol.DocErrBadMessage)

	// Base revisions the server cannot have: ahead of the document, negative.
	ans, err = w.Docs().RawSubmit(ctx, info.ID, before.Rev+100, "raw-4", json.RawMessage(`["x"]`))
	expect("base revision ahead", ans, err, protocol.DocErrInvalidOp, protocol.DocErrTooOld)
	ans, err = w.Docs().RawSubmit(ctx, info.ID, -5, "raw-5", json.RawMessage(`["x"]`))
	expect("negative base revision", ans, err, protocol.DocErrInvalidOp, protocol.DocErrTooOld, protocol.DocErrBadMessage)

	// A local op that does not fit the local text never leaves the SDK.
	if err := doc.Insert(1000, "x"); err == nil {
		t.Fatal("an insert past the end was accepted")
	}

	// A read-only participant (no editDocs grant) opens and reads; its
	// edits are refused, rolled back and reported.
	ro, err := sdk.Join(ctx, srv.URL(), mintToken(t, srv, "reader", "bad", protocol.Grants{Publish: true, Subscribe: true}), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Leave() })
	rdoc, err := ro.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !rdoc.ReadOnly() || rdoc.Text() != before.Text {
		t.Fatalf("reader: readOnly=%v text %q", rdoc.ReadOnly(), rdoc.Text())
	}
	errs := make(chan error, 4)
	rdoc.OnError(func(err error) { errs <- err })
	if err := rdoc.Insert(0, "sneaky "); err != nil {
		t.Fatal(err)
	}
	_ = rdoc.Delete(0, 3) // buffered behind the first: refused with it
	if err := rdoc.WaitSynced(ctx); !sdk.IsDocError(err, protocol.DocErrReadOnly) {
		t.Fatalf("reader's edit: %v, want read_only", err)
	}
	select {
	case err := <-errs:
		if !sdk.IsDocError(err, protocol.DocErrReadOnly) {
			t.Fatalf("OnError got %v", err)
		}
	case <-ctx.Done():
		t.Fatal("OnError not called")
	}
	for i := 0; i < 4 && rdoc.WaitSynced(ctx) != nil; i++ { // the buffered edit's refusal, if it went out
	}
	if rdoc.Text() != before.Text {
		t.Fatalf("reader's text after rollback %q, want %q", rdoc.Text(), before.Text)
	}
	ans, err = ro.Docs().RawSubmit(ctx, info.ID, before.Rev, "raw-6", json.RawMessage(`["x"]`))
	expect("raw op from a read-only participant", ans, err, protocol.DocErrReadOnly, protocol.DocErrForbidden)
	if _, err := ro.Docs().Create(ctx, "nope", ""); !sdk.IsDocError(err, protocol.DocErrForbidden) {
		t.Fatalf("reader creates a document: %v", err)
	}
	unchanged("the reader")

	// The writer's document still works, and followed nothing bad.
	if err := doc.Insert(0, "¡"); err != nil {
		t.Fatal(err)
	}
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reader to see the writer's edit", 10*time.Second, func() bool { return rdoc.Text() == "¡"+before.Text })
}

// TestDocsCursorsUndoPresence: a bot's selection reaches another bot with
// its name and colour and moves with edits on both sides; server-made
// undo and redo arrive as edits; closing the document removes the cursor.
func TestDocsCursorsUndoPresence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, _, da, db := twoEditors(t, ctx, "cur", "héllo wörld")
	var mu sync.Mutex
	var remoteEdits, cursorEvents int
	db.OnChange(func(c sdk.Change) {
		mu.Lock()
		defer mu.Unlock()
		if c.Op != nil {
			remoteEdits++
		}
		if c.Cursor != "" {
			cursorEvents++
		}
	})
	aliceAt := func(anchor, head int) func() bool {
		return func() bool {
			c, ok := db.RemoteCursors()[a.Self().ID]
			return ok && c.Anchor == anchor && c.Head == head && c.Name == "alice" && c.Color != ""
		}
	}
	for i := 0; i <= 7; i++ { // coalesced: only the last must arrive
		da.SetCursor(i, 7)
	}
	waitFor(t, "bob to see alice's selection", 10*time.Second, aliceAt(7, 7))
	da.SetCursor(2, 5)
	waitFor(t, "bob to see alice's new selection", 10*time.Second, aliceAt(2, 5))

	if err := da.Insert(0, "¡¡"); err != nil { // moves alice's own selection
		t.Fatal(err)
	}
	if an, hd := da.Cursor(); an != 4 || hd != 7 {
		t.Fatalf("alice's selection after her insert: %d-%d", an, hd)
	}
	waitFor(t, "bob to see alice's selection moved by her edit", 10*time.Second, aliceAt(4, 7))
	if err := db.Insert(0, "🙂"); err != nil { // bob's own edit moves alice's cursor in bob's text
		t.Fatal(err)
	}
	if !aliceAt(5, 8)() {
		t.Fatalf("alice's cursor after bob's insert: %+v", db.RemoteCursors()[a.Self().ID])
	}
	if err := db.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both texts equal", 10*time.Second, func() bool { return da.Text() == db.Text() })
	withBoth := da.Text()

	if err := da.Undo(ctx); err != nil {
		t.Fatal(err)
	}
	if da.Text() != "🙂héllo wörld" {
		t.Fatalf("after alice's undo: %q", da.Text())
	}
	waitFor(t, "bob to see the undo", 10*time.Second, func() bool { return db.Text() == "🙂héllo wörld" })
	if err := da.Redo(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob to see the redo", 10*time.Second, func() bool { return db.Text() == withBoth && da.Text() == withBoth })
	mu.Lock()
	if remoteEdits < 3 || cursorEvents < 2 {
		t.Errorf("bob's OnChange: %d edits, %d cursor events", remoteEdits, cursorEvents)
	}
	mu.Unlock()

	waitFor(t, "both in the document's presence", 10*time.Second, func() bool { return len(db.Presence()) == 2 })
	if err := da.Close(); err != nil {
		t.Fatal(err)
	}
	sdktest.WaitFor(t, 10*time.Second, func() string {
		// Which of the two stayed, for a failure's story.
		c, ok := db.RemoteCursors()[a.Self().ID]
		return fmt.Sprintf("alice's cursor to go when she closes (cursor still there: %v %+v; presence %v)", ok, c, db.Presence())
	}, func() bool {
		_, ok := db.RemoteCursors()[a.Self().ID]
		return !ok && len(db.Presence()) == 1
	})
}

// BenchmarkDocEditAck: one bot's edit, from Insert to the server's
// acknowledgement (durable on disk), over the data channel.
//
//	go test -run '^$' -bench DocEditAck ./sdk/
func BenchmarkDocEditAck(b *testing.B) {
	srv := startServer(b)
	ctx := context.Background()
	r, err := sdk.Join(ctx, srv.URL(), mintToken(b, srv, "bench", "bench", protocol.AllGrants()), sdk.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Leave()
	info, err := r.Docs().Create(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	doc, err := r.Docs().Open(ctx, info.ID)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := doc.Insert(doc.Len(), "é"); err != nil {
			b.Fatal(err)
		}
		if err := doc.WaitSynced(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDocsHugePasteRefused pastes 20 MB through the real server: the
// service refuses it (too_large, production limits), the SDK rolls the
// paste back and keeps the edits made after it, and the document on the
// server never saw the paste.
func TestDocsHugePasteRefused(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	w := join(t, ctx, srv, "paster", "huge", sdk.Options{})
	info, err := w.Docs().Create(ctx, "t", "start")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := w.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Insert(5, strings.Repeat("x", 20<<20)); err != nil {
		t.Fatal(err)
	}
	if err := doc.Insert(0, "kept "); err != nil { // buffered behind the paste
		t.Fatal(err)
	}
	if err := doc.WaitSynced(ctx); !sdk.IsDocError(err, protocol.DocErrTooLarge) {
		t.Fatalf("WaitSynced after a 20 MB paste = %v, want a %s refusal", err, protocol.DocErrTooLarge)
	}
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatalf("the edit after the refused paste: %v", err)
	}
	if got := doc.Text(); got != "kept start" {
		t.Fatalf("client text %q (%d code points), want the paste rolled back and the later edit kept", got[:min(len(got), 40)], len(got))
	}
	now, err := srv.Documents().Text(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if now.Text != "kept start" {
		t.Fatalf("server text %q (%d bytes), want %q", now.Text[:min(len(now.Text), 40)], len(now.Text), "kept start")
	}
}
