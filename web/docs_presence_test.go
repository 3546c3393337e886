package web_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestDocsPageHeartbeat: a page that has a document open and does nothing
// (no typing, no selection, so no cursor updates either) stays in the
// document's presence past the server's 30 s expiry: its heartbeat keeps
// it there.
func TestDocsPageHeartbeat(t *testing.T) {
	srv := startDocsServer(t)
	env := docsEnv{pageURL: srv.URL() + "/", room: "beat"}
	alice := joinDocs(t, env, "alice", "Alice", true)
	bob := joinDocs(t, env, "bob", "Bob", true)
	doc, err := eval[string](alice.browser, `window.huddle.createDoc('Idle', 'quiet')`)
	if err != nil || doc == "" {
		t.Fatalf("createDoc: %q %v", doc, err)
	}
	alice.openDoc(t, doc)
	bob.openDoc(t, doc)
	present := func() (bool, string) {
		ids, err := eval[[]string](bob.browser, fmt.Sprintf(`window.huddle.docPresence(%q)`, doc))
		return err == nil && slices.Contains(ids, alice.id), fmt.Sprint(ids, err)
	}
	waitFor(t, 10*time.Second, "alice in the presence", present)
	// Watch for longer than the expiry and its sweep.
	until := time.Now().Add(protocol.PresenceExpiry + 6*time.Second)
	for time.Now().Before(until) {
		if ok, seen := present(); !ok {
			t.Fatalf("alice dropped out of the presence while her page was idle: %s", seen)
		}
		time.Sleep(time.Second)
	}
}
