package web_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

type pageThread struct {
	ID       string `json:"id"`
	Start    int    `json:"start"`
	End      int    `json:"end"`
	Placed   bool   `json:"placed"`
	Resolved bool   `json:"resolved"`
	Comments []struct {
		Author string `json:"author"`
		Text   string `json:"text"`
	} `json:"comments"`
}

// pageThreads returns the threads of doc in p's page and the text each
// covers.
func (p *docsPerson) pageThreads(doc string) (map[string]pageThread, map[string]string, error) {
	ts, err := eval[[]pageThread](p.browser, fmt.Sprintf(`window.huddle.threads(%q)`, doc))
	if err != nil {
		return nil, nil, err
	}
	text, err := eval[string](p.browser, fmt.Sprintf(`window.huddle.docText(%q) || ''`, doc))
	if err != nil {
		return nil, nil, err
	}
	r := []rune(text)
	byID, covers := map[string]pageThread{}, map[string]string{}
	for _, t := range ts {
		byID[t.ID] = t
		if t.Placed && t.End <= len(r) {
			covers[t.ID] = string(r[t.Start:t.End])
		}
	}
	return byID, covers, nil
}

func (p *docsPerson) highlighted() (string, error) {
	return eval[string](p.browser, `[...document.querySelectorAll('#doc-overlay .cm-hl')].map((s) => s.textContent).join('')`)
}

// rejoin takes p's browser to a restarted server and opens doc again.
func (p *docsPerson) rejoin(t *testing.T, env docsEnv, identity string, doc string) {
	t.Helper()
	tok := mintToken(t, env.room, identity, p.name, protocol.Grants{Publish: true, Subscribe: true, PublishData: true, EditDocs: true})
	p.mustDo(20*time.Second, "join the restarted server",
		chromedp.Navigate(env.pageURL+"?nomedia=1&token="+url.QueryEscape(tok)),
		chromedp.WaitVisible(chromedp.ID("join")),
		chromedp.Click(chromedp.ID("join")),
	)
	waitState(t, p.browser, "joined")
	waitFor(t, 20*time.Second, p.name+"'s document panel to connect", func() (bool, string) {
		ok, err := eval[bool](p.browser, `window.huddle.docsConnected()`)
		return err == nil && ok, fmt.Sprint(err)
	})
	p.openDoc(t, doc)
}

// TestDocsCommentThreadsInPage: Alice and Bob in their own chromium
// profiles and a bot. Alice comments on a selection with the page's form;
// all three edit concurrently around and inside the range; the thread
// follows its range identically in both pages (highlighted in the editor)
// and in the bot; Bob replies in the page; the server restarts and the
// thread is back in both pages and the bot where it was; Bob resolves it
// with the page's button and it is resolved everywhere.
func TestDocsCommentThreadsInPage(t *testing.T) {
	dir := t.TempDir()
	start := func() *node.Node {
		return startServerWith(t, func(c *node.Config) {
			c.APIKeys = auth.Keys{docsAPIKey: docsAPISecret}
			c.DataDir = dir
		})
	}
	srv := start()
	env := docsEnv{pageURL: srv.URL() + "/", room: "cm"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := joinDocs(t, env, "alice", "Alice", true)
	bob := joinDocs(t, env, "bob", "Bob", true)
	doc, err := eval[string](alice.browser, `window.huddle.createDoc('Notes', 'The quick brown fox jumps.\n')`)
	if err != nil || doc == "" {
		t.Fatalf("createDoc: %q %v", doc, err)
	}
	alice.openDoc(t, doc)
	bob.openDoc(t, doc)
	botJoin := func(s *node.Node) (*sdk.Room, *sdk.Document) {
		t.Helper()
		r, err := sdk.Join(ctx, s.URL(), mintToken(t, env.room, "bot", "Bot", protocol.Grants{PublishData: true, EditDocs: true}), sdk.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Leave() })
		d, err := r.Docs().Open(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		return r, d
	}
	bot, bd := botJoin(srv)
	waitConverged(t, doc, alice, bob)

	// Alice selects "brown" and comments on it with the form.
	if _, err := eval[bool](alice.browser, `(() => {
		const ta = document.getElementById('doc-text');
		ta.focus(); ta.setSelectionRange(10, 15);
		document.getElementById('doc-comment-text').value = 'which brown?';
		document.getElementById('doc-comment-add').click();
		return true; })()`); err != nil {
		t.Fatal(err)
	}
	var id string
	waitFor(t, 10*time.Second, "the thread in both pages and the bot", func() (bool, string) {
		_, ca, err1 := alice.pageThreads(doc)
		_, cb, err2 := bob.pageThreads(doc)
		ts := bd.Threads()
		if len(ts) == 1 {
			id = ts[0].ID
		}
		return err1 == nil && err2 == nil && len(ts) == 1 && ca[id] == "brown" && cb[id] == "brown", fmt.Sprint(ca, cb, len(ts), err1, err2)
	})

	// Everyone edits at once: Alice at the start, Bob at the end, the bot
	// inside the range and before it.
	alice.focusAt(t, 0)
	bob.focusAt(t, -1)
	th, _ := bd.Thread(id)
	if err := bd.Insert(th.Start+2, "OW"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := bd.Insert(0, fmt.Sprintf("bot%d ", i)); err != nil {
			t.Fatal(err)
		}
	}
	alice.mustDo(10*time.Second, "type", chromedp.SendKeys(chromedp.ID("doc-text"), "Alice: "))
	bob.mustDo(10*time.Second, "type", chromedp.SendKeys(chromedp.ID("doc-text"), " -- Bob"))
	if err := bd.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	final := waitConverged(t, doc, alice, bob)
	waitFor(t, 10*time.Second, "the bot at the pages' text", func() (bool, string) { return bd.Text() == final.Text, bd.Text() })
	const want = "brOWown"
	waitFor(t, 10*time.Second, "the range to cover "+want+" everywhere, highlighted in both pages", func() (bool, string) {
		_, ca, _ := alice.pageThreads(doc)
		_, cb, _ := bob.pageThreads(doc)
		th, _ := bd.Thread(id)
		botCover := string([]rune(bd.Text())[th.Start:th.End])
		ha, _ := alice.highlighted()
		hb, _ := bob.highlighted()
		return ca[id] == want && cb[id] == want && botCover == want && ha == want && hb == want,
			fmt.Sprintf("alice %q bob %q bot %q highlighted %q %q", ca[id], cb[id], botCover, ha, hb)
	})

	// Bob replies in the page.
	if _, err := eval[bool](bob.browser, fmt.Sprintf(`(() => {
		const li = document.querySelector('#doc-threads li[data-thread=%q]');
		li.querySelector('.doc-thread-reply-text').value = 'dark brown';
		li.querySelector('.doc-thread-reply').click();
		return true; })()`, id)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reply in Alice's page and the bot", func() (bool, string) {
		ta, _, err := alice.pageThreads(doc)
		th, _ := bd.Thread(id)
		return err == nil && len(ta[id].Comments) == 2 && len(th.Comments) == 2 && ta[id].Comments[1].Text == "dark brown", fmt.Sprint(ta[id], err)
	})

	// The server restarts on the same data; everyone comes back.
	bot.Leave()
	srv.Close()
	srv2 := start()
	env2 := docsEnv{pageURL: srv2.URL() + "/", room: env.room}
	alice.rejoin(t, env2, "alice", doc)
	bob.rejoin(t, env2, "bob", doc)
	_, bd = botJoin(srv2)
	waitFor(t, 20*time.Second, "the thread back where it was", func() (bool, string) {
		ta, ca, _ := alice.pageThreads(doc)
		_, cb, _ := bob.pageThreads(doc)
		th, ok := bd.Thread(id)
		return ok && th.Placed && ca[id] == want && cb[id] == want && len(ta[id].Comments) == 2 && string([]rune(bd.Text())[th.Start:th.End]) == want,
			fmt.Sprint(ca, cb, th)
	})

	// Bob resolves it with the page's button.
	if _, err := eval[bool](bob.browser, fmt.Sprintf(`(() => {
		document.querySelector('#doc-threads li[data-thread=%q] .doc-thread-resolve').click();
		return true; })()`, id)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "resolved everywhere, no longer highlighted", func() (bool, string) {
		ta, _, _ := alice.pageThreads(doc)
		tb, _, _ := bob.pageThreads(doc)
		th, _ := bd.Thread(id)
		ha, _ := alice.highlighted()
		return ta[id].Resolved && tb[id].Resolved && th.Resolved && ha == "", fmt.Sprint(ta[id].Resolved, tb[id].Resolved, th.Resolved, ha)
	})
}
