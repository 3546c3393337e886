package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// cut makes p's tab drop every submit it sends ("submit") or every ack
// it gets ("ack"), across reloads (docs_loss_test.go), or stops that ("").
func cut(t *testing.T, p *docsPerson, what string) {
	t.Helper()
	js := fmt.Sprintf(`(sessionStorage.setItem('huddleLose', %q), window.__huddleLose = %q, true)`, what, what)
	if what == "" {
		js = `(sessionStorage.removeItem('huddleLose'), window.__huddleLose = '', true)`
	}
	if _, err := eval[bool](p.browser, js); err != nil {
		t.Fatal(err)
	}
}

// pendingSaved reads what p's page keeps in IndexedDB for doc.
func (p *docsPerson) pendingSaved(doc string) (string, error) {
	return eval[string](p.browser, fmt.Sprintf(`(async () => {
		const { loadPending } = await import('/docstore.js');
		const st = await loadPending(window.huddle.room + '|' + %q + '|' + %q);
		return st ? st.text : '';
	})()`, p.identity, doc))
}

// TestDocsOfflineEditsSurviveReload: Alice's edits made while her
// connection is cut are kept in IndexedDB; her tab is reloaded while still
// cut and she types more; when the connection is back, every edit is
// applied exactly once, next to what Bob typed meanwhile.
func TestDocsOfflineEditsSurviveReload(t *testing.T) {
	srv := startDocsServer(t)
	env := docsEnv{pageURL: srv.URL() + "/", room: "offline"}
	alice := joinDocs(t, env, "alice", "Alice", true)
	bob := joinDocs(t, env, "bob", "Bob", true)
	doc, err := eval[string](alice.browser, `window.huddle.createDoc('Plan', 'base\n')`)
	if err != nil || doc == "" {
		t.Fatalf("createDoc: %q %v", doc, err)
	}
	alice.openDoc(t, doc)
	bob.openDoc(t, doc)
	waitConverged(t, doc, alice, bob)

	cut(t, alice, "submit")
	const one, two = "[offline one é😀]", "[offline two]"
	alice.focusAt(t, -1)
	alice.mustDo(10*time.Second, "type while cut", chromedp.SendKeys(chromedp.ID("doc-text"), one))
	waitFor(t, 10*time.Second, "alice's unsent edits in IndexedDB", func() (bool, string) {
		saved, err := alice.pendingSaved(doc)
		return err == nil && strings.Contains(saved, one), fmt.Sprint(saved, err)
	})
	bob.focusAt(t, 0)
	bob.mustDo(10*time.Second, "bob types", chromedp.SendKeys(chromedp.ID("doc-text"), "bob "))

	// Reload while still cut, open the document again, type more.
	alice.reload(t, doc)
	waitFor(t, 10*time.Second, "alice's reopened document with her unsent edits and bob's", func() (bool, string) {
		s, err := alice.status(doc)
		return err == nil && strings.Contains(s.Text, one) && strings.HasPrefix(s.Text, "bob "), fmt.Sprint(s, err)
	})
	alice.focusAt(t, -1)
	alice.mustDo(10*time.Second, "type after the reload, still cut", chromedp.SendKeys(chromedp.ID("doc-text"), two))
	ctx := context.Background()
	if snap, err := srv.Documents().Text(ctx, doc); err != nil || strings.Contains(snap.Text, one) || strings.Contains(snap.Text, two) {
		t.Fatalf("the server has the edits made while cut: %q %v", snap.Text, err)
	}

	// Back: the connection is restored (leave and join again, as after a
	// network change): everything goes, once.
	cut(t, alice, "")
	alice.mustDo(10*time.Second, "leave", chromedp.Click(chromedp.ID("leave")))
	waitState(t, alice.browser, "left")
	alice.mustDo(10*time.Second, "join again", chromedp.Click(chromedp.ID("join"), chromedp.NodeVisible))
	waitState(t, alice.browser, "joined")
	final := waitConverged(t, doc, alice, bob)
	snap, err := srv.Documents().Text(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Text != final.Text || strings.Count(final.Text, one) != 1 || strings.Count(final.Text, two) != 1 || !strings.HasPrefix(final.Text, "bob ") {
		t.Fatalf("after coming back: %q (server %q), want each offline edit once and bob's", final.Text, snap.Text)
	}
	waitFor(t, 10*time.Second, "IndexedDB emptied once acknowledged", func() (bool, string) {
		saved, err := alice.pendingSaved(doc)
		return err == nil && saved == "", fmt.Sprint(saved, err)
	})
	t.Logf("converged on %q at rev %d", final.Text, final.Rev)

	// An edit the server applied but whose ack was lost: after a reload
	// the catch-up carries it back with its id, and it stays once.
	const three = "[ack lost]"
	cut(t, alice, "ack")
	alice.focusAt(t, -1)
	alice.mustDo(10*time.Second, "type, acks cut", chromedp.SendKeys(chromedp.ID("doc-text"), three))
	// The first keystroke is applied; the rest waits behind its lost ack.
	waitFor(t, 10*time.Second, "the server to apply it and alice to keep it unacknowledged", func() (bool, string) {
		snap, err := srv.Documents().Text(ctx, doc)
		saved, err2 := alice.pendingSaved(doc)
		return err == nil && err2 == nil && snap.Rev > final.Rev && strings.Contains(saved, three), fmt.Sprint(snap.Rev, saved, err, err2)
	})
	// The connection is fine again (nothing more comes for the lost ack),
	// and the tab reloads.
	cut(t, alice, "")
	alice.reload(t, doc)
	final = waitConvergedAfter(t, doc, final.Rev, alice, bob)
	if strings.Count(final.Text, three) != 1 {
		t.Fatalf("after the reload: %q, want %q once", final.Text, three)
	}
}

// reload reloads p's tab, which joins again; the page opens doc by itself, since
// it has unsent edits in it.
func (p *docsPerson) reload(t *testing.T, doc string) {
	t.Helper()
	// A reload joins the same room again by itself (the page keeps the
	// room in its URL and the token for the tab: TestReloadRejoins).
	p.mustDo(20*time.Second, "reload", chromedp.Reload())
	waitState(t, p.browser, "joined")
	waitFor(t, 20*time.Second, p.name+"'s document panel to connect", func() (bool, string) {
		ok, err := eval[bool](p.browser, `window.huddle.docsConnected()`)
		return err == nil && ok, fmt.Sprint(err)
	})
	waitFor(t, 10*time.Second, p.name+"'s page to open the document with unsent edits", func() (bool, string) {
		st, err := eval[string](p.browser, fmt.Sprintf(`window.huddle.docState(%q) || ''`, doc))
		return err == nil && st != "", fmt.Sprint(st, err)
	})
}
