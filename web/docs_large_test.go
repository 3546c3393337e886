package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestDocsSevenMegabytesInPage: a 7 MB document (larger, as JSON, than the
// server's 8 MiB per-participant queue) opens in chromium while a bot keeps
// typing at its top; the page ends with the server's text, and typing in
// the page still reaches the server.
func TestDocsSevenMegabytesInPage(t *testing.T) {
	srv := startDocsServer(t)
	env := docsEnv{pageURL: srv.URL() + "/", room: "big7"}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	big := sdktest.BigText(7 << 20)
	meta, err := srv.Documents().CreateDoc(ctx, collab.CreateRequest{Room: env.room, Title: "big", Text: big})
	if err != nil {
		t.Fatal(err)
	}
	bot, err := sdk.Join(ctx, srv.URL(), mintToken(t, env.room, "typist", "Typist", protocol.AllGrants()), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bot.Leave()
	doc, err := bot.Docs().Open(ctx, meta.ID)
	if err != nil {
		t.Fatal(err)
	}
	alice := joinDocs(t, env, "alice", "Alice", true)

	// The bot types at the top while Alice opens it.
	stopTyping := sdktest.TypeAtTop(t, doc, 250*time.Millisecond)
	opened := time.Now()
	alice.openDoc(t, meta.ID)
	tOpen := time.Since(opened)
	typed := stopTyping()
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	want := serverText(t, srv, meta.ID)
	waitFor(t, 60*time.Second, "alice's page to hold the server's text", func() (bool, string) {
		s, err := alice.status(meta.ID)
		return err == nil && s.State == "synchronized" && s.Hash == pageHash(want), fmt.Sprintf("%s rev %d len %d (want %d) %v", s.State, s.Rev, s.Len, len([]rune(want)), err)
	})
	t.Logf("alice opened 7 MB in %v while the bot made %d edits", tOpen.Round(time.Millisecond), typed)

	// Typing in the page still works on a text this size.
	alice.focusAt(t, 0)
	alice.mustDo(90*time.Second, "type", chromedp.SendKeys(chromedp.ID("doc-text"), "ok "))
	waitFor(t, 60*time.Second, "alice's typing to reach the server and the bot", func() (bool, string) {
		text := serverText(t, srv, meta.ID)
		return strings.HasPrefix(text, "ok ") && doc.Text() == text, fmt.Sprintf("server starts %q", text[:min(20, len(text))])
	})

	// The page shows a window of a text this size; scrolling down moves
	// it, to the end, where typing lands at the document's end.
	runes := []rune(want)
	tail := string(runes[len(runes)-100:])
	scrolls := 0
	waitFor(t, 120*time.Second, "the editor's window to reach the end of the document", func() (bool, string) {
		atEnd, err := eval[bool](alice.browser, fmt.Sprintf(`(() => {
			const ta = document.getElementById('doc-text');
			if (ta.value.endsWith(%q)) return true;
			ta.scrollTop = ta.scrollHeight;
			return false;
		})()`, tail))
		scrolls++
		return err == nil && atEnd, fmt.Sprintf("%d scrolls, %v", scrolls, err)
	})
	length, err := eval[int](alice.browser, `document.getElementById('doc-text').value.length`)
	if err != nil || length >= len(utf16.Encode(runes))/4 {
		t.Errorf("the editor holds %d UTF-16 units of a 7 MB document (%v): want a window of it", length, err)
	}
	alice.focusAt(t, -1)
	alice.mustDo(90*time.Second, "type at the end", chromedp.SendKeys(chromedp.ID("doc-text"), "END"))
	waitFor(t, 60*time.Second, "typing at the end of the window to land at the end of the document", func() (bool, string) {
		text := serverText(t, srv, meta.ID)
		return strings.HasSuffix(text, tail+"END") && doc.Text() == text, fmt.Sprintf("server ends %q", text[max(0, len(text)-20):])
	})
	t.Logf("the window reached the end after %d scrolls", scrolls)
}

func serverText(t *testing.T, srv interface {
	Documents() *collab.Service
}, id string) string {
	t.Helper()
	snap, err := srv.Documents().Text(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Text
}

// pageHash is the FNV-1a of the text's UTF-16 code units, as status
// computes it in the page.
func pageHash(s string) string {
	x := uint32(0x811c9dc5)
	for _, u := range utf16.Encode([]rune(s)) {
		x = (x ^ uint32(u)) * 16777619
	}
	return fmt.Sprint(x)
}
