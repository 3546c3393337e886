package web_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/auth"
)

// TestDocsPageSurvivesStoreOutage: the server keeps documents and chat in
// a real redis-server, which is killed (SIGKILL) while Alice types. Her
// page shows "Saving paused", keeps her edits in the editor (and in
// IndexedDB), and goes on taking more; her chat message gets the composer's "not stored" notice.
// Once redis-server is back the page opens the document again by itself
// and resubmits: every edit is in the server's text exactly once and her
// text is the server's; the chat message is stored once.
func TestDocsPageSurvivesStoreOutage(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	srv := startServerWith(t, func(c *node.Config) {
		c.APIKeys = auth.Keys{docsAPIKey: docsAPISecret}
		c.DocStore = collab.NewRedisStore(rdb, collab.RedisStoreOptions{Timeout: 2 * time.Second})
		c.ChatStore = signaling.NewRedisChatStore(rdb, signaling.RedisChatOptions{Timeout: 2 * time.Second})
	})
	env := docsEnv{pageURL: srv.URL() + "/", room: "outage"}
	alice := joinDocs(t, env, "alice", "Alice", true)
	doc, err := eval[string](alice.browser, `window.huddle.createDoc('Plan', 'base\n')`)
	if err != nil || doc == "" {
		t.Fatalf("createDoc: %q %v", doc, err)
	}
	alice.openDoc(t, doc)
	start := waitConverged(t, doc, alice)

	rs.Kill()
	const one, two = "[during one é😀]", "[during two]"
	alice.focusAt(t, -1)
	alice.mustDo(10*time.Second, "type while the store is down", chromedp.SendKeys(chromedp.ID("doc-text"), one))
	waitFor(t, 20*time.Second, "alice's page to say saving is paused", func() (bool, string) {
		st, err := eval[string](alice.browser, fmt.Sprintf(`window.huddle.docSaveState(%q) + ' | ' + window.huddle.docStatus()`, doc))
		return err == nil && strings.HasPrefix(st, "paused | Saving paused"), fmt.Sprint(st, err)
	})
	alice.focusAt(t, -1)
	alice.mustDo(10*time.Second, "type more while paused", chromedp.SendKeys(chromedp.ID("doc-text"), two))
	if text, err := eval[string](alice.browser, fmt.Sprintf(`window.huddle.docText(%q)`, doc)); err != nil ||
		strings.Count(text, one) != 1 || strings.Count(text, two) != 1 {
		t.Fatalf("alice's text while paused: %q %v, want both edits kept", text, err)
	}
	waitFor(t, 10*time.Second, "alice's unsaved edits kept in IndexedDB too", func() (bool, string) {
		saved, err := alice.pendingSaved(doc)
		return err == nil && strings.Contains(saved, one) && strings.Contains(saved, two), fmt.Sprint(saved, err)
	})
	if _, err := eval[string](alice.browser, `window.huddle.sendChat('said during the outage')`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the chat composer to say the message was not stored", func() (bool, string) {
		n, err := eval[string](alice.browser, `window.huddle.chatNotice()`)
		return err == nil && strings.Contains(n, "could not store"), fmt.Sprint(n, err)
	})

	rs.Restart()
	final := waitConvergedAfter(t, doc, start.Rev, alice)
	snap, err := srv.Documents().Text(context.Background(), doc)
	if err != nil {
		t.Fatal(err)
	}
	if final.Text != snap.Text || strings.Count(snap.Text, one) != 1 || strings.Count(snap.Text, two) != 1 || !strings.HasPrefix(snap.Text, "base\n") {
		t.Fatalf("after the outage: page %q, server %q; want both edits once", final.Text, snap.Text)
	}
	if st, err := eval[string](alice.browser, fmt.Sprintf(`window.huddle.docSaveState(%q) + ' | ' + window.huddle.docStatus()`, doc)); err != nil || st != " | Saved" {
		t.Fatalf("status after the outage: %q %v, want \" | Saved\"", st, err)
	}
	for _, e := range final.Errors {
		if e.Code != "unavailable" && e.Code != "not_open" {
			t.Fatalf("unexpected document error: %+v", e)
		}
	}

	// The chat message goes again by itself, or, if its resends ran out
	// during the outage, with the next one; each is stored once.
	if _, err := eval[string](alice.browser, `window.huddle.sendChat('said after the outage')`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "both chat messages, once each", func() (bool, string) {
		texts, err := eval[[]string](alice.browser, `window.huddle.chat().map((m) => m.text)`)
		return err == nil && count(texts, "said during the outage") == 1 && count(texts, "said after the outage") == 1, fmt.Sprint(texts, err)
	})
	if n, err := eval[string](alice.browser, `window.huddle.chatNotice()`); err != nil || n != "" {
		t.Fatalf("chat notice after delivery: %q %v, want none", n, err)
	}
}

func count(xs []string, x string) int {
	return len(slices.DeleteFunc(slices.Clone(xs), func(s string) bool { return s != x }))
}
