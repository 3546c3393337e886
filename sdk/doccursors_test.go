package sdk_test

import (
	"context"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
)

// TestDocCursorGoneNotOvertaken: a cursor and its removal travel on
// different channels (cursors is unordered and lossy, cursorGone goes on
// the reliable collab channel), so a cursor the server sent before the
// removal can be handled after it. It must not bring the caret back: the
// removal's seq is above it. A cursor sent after the participant opens
// the document again is shown.
func TestDocCursorGoneNotOvertaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b, da, db := twoEditors(t, ctx, "ghost", "hello world")
	alice := a.Self().ID
	aliceAt := func(anchor, head int) func() bool {
		return func() bool {
			c, ok := db.RemoteCursors()[alice]
			return ok && c.Anchor == anchor && c.Head == head
		}
	}
	da.SetCursor(1, 3)
	waitFor(t, "bob to see alice's selection", 10*time.Second, aliceAt(1, 3))
	stale := db.StaleCursor(alice)

	if err := da.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's cursor to go when she closes", 10*time.Second, func() bool {
		_, ok := db.RemoteCursors()[alice]
		return !ok && len(db.Presence()) == 1
	})
	b.Docs().DeliverCursor(stale) // the cursor the removal overtook
	if c, ok := db.RemoteCursors()[alice]; ok {
		t.Fatalf("a cursor sent before alice closed brought her caret back after its removal: %+v", c)
	}

	da, err := a.Docs().Open(ctx, da.ID())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both in the document's presence again", 10*time.Second, func() bool { return len(db.Presence()) == 2 })
	da.SetCursor(4, 4)
	waitFor(t, "bob to see alice's cursor after she opened again", 10*time.Second, aliceAt(4, 4))
}

// twoEditors starts a server, joins alice and bob to room, and opens a new
// document with text in both: alice's and bob's rooms and documents.
func twoEditors(t *testing.T, ctx context.Context, room, text string) (a, b *sdk.Room, da, db *sdk.Document) {
	t.Helper()
	srv := startServer(t)
	a = join(t, ctx, srv, "alice", room, sdk.Options{})
	b = join(t, ctx, srv, "bob", room, sdk.Options{})
	info, err := a.Docs().Create(ctx, "doc", text)
	if err != nil {
		t.Fatal(err)
	}
	if da, err = a.Docs().Open(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if db, err = b.Docs().Open(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	return a, b, da, db
}
