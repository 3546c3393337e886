package sdk_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestDocsSilentClientExpires: a bot that stops its heartbeat without
// closing anything (as a frozen client would) disappears from the other
// bot's carets and the document's presence within the server's default
// expiry (30 s), and is back when it moves its caret again.
func TestDocsSilentClientExpires(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	alice := join(t, ctx, srv, "alice", "beat", sdk.Options{})
	bob := join(t, ctx, srv, "bob", "beat", sdk.Options{})
	info, err := alice.Docs().Create(ctx, "t", "hello world")
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
	aliceID := alice.Self().ID
	da.SetCursor(3, 3)
	waitFor(t, "bob to see alice's caret", 10*time.Second, func() bool { _, ok := db.RemoteCursors()[aliceID]; return ok })

	alice.Docs().StopHeartbeat()
	silent := time.Now()
	waitFor(t, "alice's caret to expire", protocol.PresenceExpiry+15*time.Second, func() bool {
		_, ok := db.RemoteCursors()[aliceID]
		return !ok && !slices.Contains(db.Presence(), aliceID)
	})
	t.Logf("alice's caret gone %v after her last heartbeat stopped", time.Since(silent).Round(100*time.Millisecond))
	if !slices.Contains(db.Presence(), bob.Self().ID) {
		t.Fatalf("bob, who beats, left the presence too: %v", db.Presence())
	}

	// Cursors ride an unordered channel with no retransmissions: one
	// update may be lost, so alice moves again until bob sees her back.
	waitFor(t, "alice back", 10*time.Second, func() bool {
		c, ok := db.RemoteCursors()[aliceID]
		if ok && c.Head == 5 && slices.Contains(db.Presence(), aliceID) {
			return true
		}
		da.SetCursor(4, 4)
		da.SetCursor(5, 5)
		return false
	})
}
