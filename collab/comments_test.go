package collab

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// Threads follow their range through ops from anyone, collapse when their
// text is deleted, keep replies, edits and resolution, survive a restart
// of the service over the same bbolt file, and refuse what exceeds the
// limits. In every durable store.
func TestCommentThreads(t *testing.T) {
	for name, opener := range storeOpeners() {
		if name != "mem" {
			t.Run(name, func(t *testing.T) { testCommentThreads(t, opener(t)) })
		}
	}
}

func testCommentThreads(t *testing.T, openStore func() Store) {
	ctx := context.Background()
	open := func() (*Service, *Comments, func()) {
		store := openStore()
		svc, err := NewService(Config{Store: store})
		if err != nil {
			t.Fatal(err)
		}
		cm, err := NewComments(svc, CommentLimits{MaxText: 10, MaxThreads: 2, MaxComments: 3, MaxBytes: 18})
		if err != nil {
			t.Fatal(err)
		}
		return svc, cm, func() { svc.Close(); store.Close() }
	}
	svc, cm, closeAll := open()
	if _, err := svc.CreateDoc(ctx, CreateRequest{ID: "d", Room: "r", Text: "hello wörld 😀 end"}); err != nil {
		t.Fatal(err)
	}
	submit := func(id string, base int64, op ot.Op) {
		t.Helper()
		if _, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "bob", ClientOpID: id, BaseRev: base, Op: op}); err != nil {
			t.Fatal(err)
		}
	}
	th, err := cm.NewThread(ctx, "d", 0, 6, 11, "alice", "Alice", "typo?") // "wörld"
	if err != nil {
		t.Fatal(err)
	}
	submit("1", 0, ot.Op{}.Insert(">> "))                 // before the range
	submit("2", 0, ot.Op{}.Retain(6).Insert("big "))      // at its start (base 0: transformed)
	submit("3", 2, ot.Op{}.Retain(3+4+6+5).Insert("!!!")) // at its end
	ts, err := cm.Threads(ctx, "d")
	if err != nil || len(ts) != 1 {
		t.Fatalf("threads: %v %+v", err, ts)
	}
	snap, _ := svc.Text(ctx, "d")
	got := string([]rune(snap.Text)[ts[0].Start:ts[0].End])
	// As a remote caret: an insert at the start lands inside the range,
	// one at its end outside.
	if ts[0].Rev != snap.Rev || got != "big wörld" {
		t.Fatalf("range %d..%d at %d of %q: %q", ts[0].Start, ts[0].End, ts[0].Rev, snap.Text, got)
	}

	if _, err := cm.Reply(ctx, "d", th.ID, "bob", "Bob", "fixed"); err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Edit(ctx, "d", th.ID, th.Comments[0].ID, "bob", "mine now"); !errors.Is(err, ErrNotAuthor) {
		t.Fatalf("bob edits alice's comment: %v", err)
	}
	if _, err := cm.Edit(ctx, "d", th.ID, th.Comments[0].ID, "alice", "typo!"); err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Resolve(ctx, "d", th.ID, true); err != nil {
		t.Fatal(err)
	}
	// Limits: text length, comments per thread, threads per document.
	if _, err := cm.Reply(ctx, "d", th.ID, "bob", "Bob", strings.Repeat("é", 11)); !errors.Is(err, ErrCommentLimit) {
		t.Fatalf("long comment: %v", err)
	}
	if _, err := cm.Reply(ctx, "d", th.ID, "bob", "Bob", ""); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("empty comment: %v", err)
	}
	if _, err := cm.Reply(ctx, "d", th.ID, "bob", "Bob", "3rd"); err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Reply(ctx, "d", th.ID, "bob", "Bob", "4th"); !errors.Is(err, ErrCommentLimit) {
		t.Fatalf("4th comment: %v", err)
	}
	if _, err := cm.NewThread(ctx, "d", snap.Rev, 0, 99, "alice", "Alice", "past"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("range past the end: %v", err)
	}
	th2, err := cm.NewThread(ctx, "d", snap.Rev, 0, 2, "alice", "Alice", "two")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cm.NewThread(ctx, "d", snap.Rev, 0, 1, "alice", "Alice", "three"); !errors.Is(err, ErrCommentLimit) {
		t.Fatalf("third thread: %v", err)
	}
	// 16 bytes of comments so far; 4 more pass the document's 18.
	if _, err := cm.Reply(ctx, "d", th2.ID, "bob", "Bob", "four"); !errors.Is(err, ErrCommentLimit) {
		t.Fatalf("past the document's bytes: %v", err)
	}
	// Deleting the range's text collapses it where the text was.
	submit("4", snap.Rev, ot.Op{}.Delete(4))
	closeAll()

	svc, cm, closeAll = open()
	defer closeAll()
	ts, err = cm.Threads(ctx, "d")
	if err != nil || len(ts) != 2 {
		t.Fatalf("after restart: %v %+v", err, ts)
	}
	first := ts[0]
	if first.ID != th.ID {
		first = ts[1]
	}
	if !first.Resolved || len(first.Comments) != 3 || first.Comments[0].Text != "typo!" || first.Comments[0].Edited.IsZero() {
		t.Fatalf("after restart: %+v", first)
	}
	for _, x := range ts {
		if x.ID == th2.ID && (x.Start != 0 || x.End != 0) {
			t.Fatalf("deleted range did not collapse: %+v", x)
		}
	}
	if _, err := cm.Reply(ctx, "d", "nope", "bob", "Bob", "x"); !errors.Is(err, ErrUnknownThread) {
		t.Fatalf("unknown thread: %v", err)
	}
}
