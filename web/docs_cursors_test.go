package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestDocsPageCursorGoneNotOvertaken: the page drops a cursor that its
// removal overtook. A bot's selection reaches the page; the bot closes the
// document and its caret goes; then the cursor the page got before is
// handled again, as if the cursors channel (unordered) had delivered it
// after the collab channel's cursorGone: the caret must not come back.
// Once the bot opens the document again its new cursor shows.
func TestDocsPageCursorGoneNotOvertaken(t *testing.T) {
	srv := startDocsServer(t)
	env := docsEnv{pageURL: srv.URL() + "/", room: "ghost"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := joinDocs(t, env, "alice", "Alice", true)
	bot, err := sdk.Join(ctx, srv.URL(), mintToken(t, env.room, "bot", "Bot", protocol.Grants{PublishData: true, EditDocs: true}), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bot.Leave()
	info, err := bot.Docs().Create(ctx, "g", "hello world")
	if err != nil {
		t.Fatal(err)
	}
	doc, botID := info.ID, bot.Self().ID
	alice.openDoc(t, doc)
	bd, err := bot.Docs().Open(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	// The bot's cursor as the page holds it, rebuilt as the message that
	// brought it; "" until it is at anchor-head.
	cursorMsg := fmt.Sprintf(`((anchor, head) => {
		const c = window.huddle.remoteCursors(%q).find((c) => c.participant === %q);
		if (!c || c.anchor !== anchor || c.head !== head) return '';
		return JSON.stringify({type: 'cursor', doc: %q, rev: c.rev, anchor: c.anchor, head: c.head, participant: c.participant, name: c.name, color: c.color, seq: c.seq});
	})`, doc, botID, doc)
	shown := func(anchor, head int) func() (bool, string) {
		return func() (bool, string) {
			m, err := eval[string](alice.browser, fmt.Sprintf(`%s(%d, %d)`, cursorMsg, anchor, head))
			return err == nil && m != "", fmt.Sprint(m, err)
		}
	}
	bd.SetCursor(1, 3)
	waitFor(t, 10*time.Second, "alice's page to show the bot's selection", shown(1, 3))
	stale, err := eval[string](alice.browser, fmt.Sprintf(`%s(1, 3)`, cursorMsg))
	if err != nil || stale == "" {
		t.Fatalf("the bot's cursor in the page: %q %v", stale, err)
	}

	if err := bd.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the bot's caret and presence to go from alice's page", func() (bool, string) {
		cs, carets, err := alice.cursorsShown(doc)
		people, _ := eval[[]string](alice.browser, fmt.Sprintf(`window.huddle.docPresence(%q)`, doc))
		return err == nil && len(cs) == 0 && len(carets) == 0 && len(people) == 1, fmt.Sprint(cs, carets, people, err)
	})
	if _, err := eval[bool](alice.browser, fmt.Sprintf(`(window.huddle.deliverCursor(JSON.parse(%q)), true)`, stale)); err != nil {
		t.Fatal(err)
	}
	if cs, carets, err := alice.cursorsShown(doc); err != nil || len(cs) != 0 || len(carets) != 0 {
		t.Fatalf("a cursor sent before the bot closed brought its caret back: %v %v %v", cs, carets, err)
	}

	if bd, err = bot.Docs().Open(ctx, doc); err != nil {
		t.Fatal(err)
	}
	bd.SetCursor(4, 4)
	waitFor(t, 10*time.Second, "alice's page to show the bot's cursor after it opened again", shown(4, 4))
}
