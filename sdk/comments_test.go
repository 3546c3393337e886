package sdk_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func rangeText(d *sdk.Document, th sdk.Thread) string {
	r := []rune(d.Text())
	if !th.Placed || th.End > len(r) {
		return fmt.Sprintf("<unplaced %d..%d>", th.Start, th.End)
	}
	return string(r[th.Start:th.End])
}

// TestDocsCommentThreads: two bots comment on ranges of a document while
// both edit it concurrently: every thread follows its range on both,
// replies, edits and resolution reach both, a range whose text is deleted
// collapses, bad input is refused with its code, and after a restart of
// the server a new client finds the threads where they belong.
func TestDocsCommentThreads(t *testing.T) {
	dir := t.TempDir()
	srv := startServerWith(t, func(c *node.Config) { c.DataDir = dir })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := join(t, ctx, srv, "alice", "c", sdk.Options{})
	bob := join(t, ctx, srv, "bob", "c", sdk.Options{})
	info, err := alice.Docs().Create(ctx, "notes", "The quick brown fox jumps. 😀")
	if err != nil {
		t.Fatal(err)
	}
	da, err := alice.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bob.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	brown, err := da.Comment(ctx, 10, 15, "which brown?")
	if err != nil {
		t.Fatal(err)
	}
	fox, err := da.Comment(ctx, 16, 19, "the fox")
	if err != nil {
		t.Fatal(err)
	}
	if got := rangeText(da, brown); got != "brown" {
		t.Fatalf("alice's new thread covers %q", got)
	}
	// Concurrent edits around and inside the ranges, from both.
	for i := range 10 {
		if err := da.Insert(0, fmt.Sprintf("a%d ", i)); err != nil {
			t.Fatal(err)
		}
		if err := db.Insert(db.Len()-2, "b"); err != nil { // before the emoji
			t.Fatal(err)
		}
	}
	th, _ := db.Thread(brown.ID)
	if err := db.Insert(th.Start+2, "OW"); err != nil { // inside "brown": "brOWown"
		t.Fatal(err)
	}
	for _, d := range []*sdk.Document{da, db} {
		if err := d.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	both := func(what string, ok func(d *sdk.Document) bool) {
		t.Helper()
		waitFor(t, what, 20*time.Second, func() bool { return ok(da) && ok(db) && da.Text() == db.Text() })
	}
	both("the ranges to follow the edits on both", func(d *sdk.Document) bool {
		b, _ := d.Thread(brown.ID)
		f, _ := d.Thread(fox.ID)
		return rangeText(d, b) == "brOWown" && rangeText(d, f) == "fox"
	})

	// Replies, an edit, resolution.
	if _, err := db.Reply(ctx, brown.ID, "dark brown"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EditComment(ctx, brown.ID, brown.Comments[0].ID, "not mine"); !sdk.IsDocError(err, protocol.DocErrForbidden) {
		t.Fatalf("bob edits alice's comment: %v", err)
	}
	if _, err := da.EditComment(ctx, brown.ID, brown.Comments[0].ID, "which shade of brown?"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Resolve(ctx, brown.ID, true); err != nil {
		t.Fatal(err)
	}
	both("the reply, the edit and the resolution on both", func(d *sdk.Document) bool {
		b, _ := d.Thread(brown.ID)
		return b.Resolved && len(b.Comments) == 2 && b.Comments[0].Text == "which shade of brown?" && !b.Comments[0].Edited.IsZero() && b.Comments[1].Author == "bob"
	})
	// Deleting the fox collapses its thread.
	f, _ := da.Thread(fox.ID)
	if err := da.Delete(f.Start, 3); err != nil {
		t.Fatal(err)
	}
	both("the fox's range to collapse", func(d *sdk.Document) bool {
		f, _ := d.Thread(fox.ID)
		return f.Placed && f.Start == f.End
	})

	// Bad input: too long, empty, a range past the end, an unknown thread.
	if _, err := da.Reply(ctx, brown.ID, strings.Repeat("x", 4001)); !sdk.IsDocError(err, protocol.DocErrLimit) {
		t.Fatalf("a 4001-character comment: %v", err)
	}
	if _, err := da.Reply(ctx, brown.ID, ""); !sdk.IsDocError(err, protocol.DocErrBadMessage) {
		t.Fatalf("an empty comment: %v", err)
	}
	if _, err := da.Reply(ctx, "nope", "x"); !sdk.IsDocError(err, protocol.DocErrBadMessage) {
		t.Fatalf("a reply to no thread: %v", err)
	}
	if _, err := da.Comment(ctx, 0, da.Len()+1, "x"); err == nil {
		t.Fatal("a comment past the end was accepted")
	}
	want := da.Text()
	wantBrown, _ := da.Thread(brown.ID)

	// Restart the server on the same data: a new client finds the threads.
	alice.Leave()
	bob.Leave()
	srv.Close()
	srv2 := startServerWith(t, func(c *node.Config) { c.DataDir = dir })
	carol := join(t, ctx, srv2, "carol", "c", sdk.Options{})
	dc, err := carol.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "carol to get the threads", 10*time.Second, func() bool { return len(dc.Threads()) == 2 })
	b, _ := dc.Thread(brown.ID)
	if dc.Text() != want || rangeText(dc, b) != "brOWown" || !b.Resolved || len(b.Comments) != 2 || b.Comments[0].Text != wantBrown.Comments[0].Text {
		t.Fatalf("after the restart: text equal %v, thread %+v covering %q", dc.Text() == want, b, rangeText(dc, b))
	}
	if b, err = dc.Resolve(ctx, brown.ID, false); err != nil || b.Resolved {
		t.Fatalf("reopen: %+v %v", b, err)
	}
	// Rate: a burst of requests is cut off with rate_limited.
	limited := false
	for i := 0; i < 60 && !limited; i++ {
		_, err := dc.Reply(ctx, brown.ID, "spam")
		switch {
		case sdk.IsDocError(err, protocol.DocErrRateLimited):
			limited = true
		case err != nil:
			t.Fatal(err)
		}
	}
	if !limited {
		t.Fatal("60 replies in a row were never rate limited")
	}
}
