package web_test

// The people of the documents tests: a real server with API keys, tokens,
// people joined in their own chromium profiles, and what their pages show.

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

const (
	docsAPIKey    = "APIdocs"
	docsAPISecret = "a-long-enough-secret-for-the-document-tests"
)

// docsEnv is where the page is served and how people get tokens.
type docsEnv struct {
	pageURL string // with a trailing "/"
	room    string
}

// startDocsServer runs a real server with API keys, so that tests can mint
// tokens with and without the editDocs grant.
func startDocsServer(t *testing.T) *node.Node {
	return startServerWith(t, func(c *node.Config) {
		c.APIKeys = auth.Keys{docsAPIKey: docsAPISecret}
	})
}

func mintToken(t *testing.T, room, identity, name string, g protocol.Grants) string {
	t.Helper()
	tok, err := auth.Mint(docsAPIKey, docsAPISecret, auth.Claims{
		Identity: identity, Name: name, Room: room, Grants: g,
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// docsPerson is one person in a browser, joined, with the document panel
// connected.
type docsPerson struct {
	*browser
	id       string
	name     string
	identity string
}

func joinDocs(t *testing.T, env docsEnv, identity, name string, edit bool) *docsPerson {
	t.Helper()
	return joinDocsWith(t, env, identity, name, protocol.Grants{Publish: true, Subscribe: true, PublishData: true, EditDocs: edit})
}

func joinDocsWith(t *testing.T, env docsEnv, identity, name string, grants protocol.Grants) *docsPerson {
	t.Helper()
	b := newBrowser(t, identity)
	b.dumpLogsOnFailure()
	injectLoss(t, b)
	tok := mintToken(t, env.room, identity, name, grants)
	b.mustDo(20*time.Second, "open the invitation and join",
		chromedp.Navigate(env.pageURL+"?nomedia=1&token="+url.QueryEscape(tok)),
		chromedp.WaitVisible(chromedp.ID("join")),
		chromedp.Click(chromedp.ID("join")),
	)
	waitState(t, b, "joined")
	id, err := eval[string](b, `window.huddle.participantId`)
	if err != nil || id == "" {
		t.Fatalf("%s: no participant id (%v)", name, err)
	}
	waitFor(t, 20*time.Second, name+"'s document panel to connect", func() (bool, string) {
		ok, err := eval[bool](b, `window.huddle.docsConnected()`)
		return err == nil && ok, fmt.Sprint(err)
	})
	return &docsPerson{browser: b, id: id, name: name, identity: identity}
}

// openDoc opens doc in p's editor and waits for its text (polled rather
// than awaited in one eval: laying out a large text in the textarea can
// outlast eval's deadline on a loaded machine).
func (p *docsPerson) openDoc(t *testing.T, doc string) {
	t.Helper()
	n, err := eval[int](p.browser, fmt.Sprintf(`(() => {
		const n = window.__openSeq = (window.__openSeq || 0) + 1;
		window.huddle.openDoc(%q).then(() => { window['__opened' + n] = 'ok'; }, (e) => { window['__opened' + n] = String(e) || 'failed'; });
		return n; })()`, doc))
	if err != nil {
		t.Fatalf("%s: openDoc: %v", p.name, err)
	}
	waitFor(t, 60*time.Second, p.name+"'s editor to open "+doc, func() (bool, string) {
		r, err := eval[string](p.browser, fmt.Sprintf(`window['__opened' + %d] || ''`, n))
		if r != "" && r != "ok" {
			t.Fatalf("%s: openDoc: %s", p.name, r)
		}
		return err == nil && r == "ok", fmt.Sprint(err)
	})
}

type docStatus struct {
	State  string `json:"state"`
	Rev    int64  `json:"rev"`
	Len    int    `json:"len"`  // code points
	Hash   string `json:"hash"` // of the text, to compare large ones
	Text   string `json:"text"` // only when short
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (p *docsPerson) status(doc string) (docStatus, error) {
	return eval[docStatus](p.browser, fmt.Sprintf(`(() => {
		const h = window.huddle, id = %q, text = h.docText(id) || '';
		let x = 0x811c9dc5;
		for (let i = 0; i < text.length; i++) x = Math.imul(x ^ text.charCodeAt(i), 16777619) >>> 0;
		return {state: h.docState(id) || '', rev: h.docRev(id) || 0, len: [...text].length, hash: String(x),
			text: text.length < 4096 ? text : '', errors: h.docErrors()};
	})()`, doc))
}

// waitConverged waits until everyone's copy of doc is synchronized and the
// same, and returns it.
func waitConverged(t *testing.T, doc string, people ...*docsPerson) docStatus {
	t.Helper()
	return waitConvergedAfter(t, doc, -1, people...)
}

// waitConvergedAfter is waitConverged past revision minRev.
func waitConvergedAfter(t *testing.T, doc string, minRev int64, people ...*docsPerson) docStatus {
	t.Helper()
	var last docStatus
	waitFor(t, 30*time.Second, "everyone's copy to be synchronized and equal", func() (bool, string) {
		var seen []string
		ok := true
		for i, p := range people {
			s, err := p.status(doc)
			if err != nil {
				return false, err.Error()
			}
			seen = append(seen, fmt.Sprintf("%s: %s rev %d len %d %q", p.name, s.State, s.Rev, s.Len, s.Text))
			if s.State != "synchronized" || s.Rev <= minRev || (i > 0 && (s.Hash != last.Hash || s.Rev != last.Rev)) {
				ok = false
			}
			last = s
		}
		return ok, strings.Join(seen, "; ")
	})
	return last
}

// focusAt focuses the editor with the caret at code point pos (-1: end).
func (p *docsPerson) focusAt(t *testing.T, pos int) {
	t.Helper()
	_, err := eval[bool](p.browser, fmt.Sprintf(`(() => {
		const ta = document.getElementById('doc-text');
		ta.focus();
		const cps = [...ta.value];
		const pos = %d < 0 ? cps.length : %d;
		const u = cps.slice(0, pos).join('').length;
		ta.setSelectionRange(u, u);
		return true;
	})()`, pos, pos))
	if err != nil {
		t.Fatalf("%s: focus: %v", p.name, err)
	}
}

type remoteCursor struct {
	Participant string `json:"participant"`
	Name        string `json:"name"`
	Color       string `json:"color"`
	Anchor      int    `json:"anchor"`
	Head        int    `json:"head"`
}

type overlayCaret struct {
	Participant string  `json:"participant"`
	Flag        string  `json:"flag"`
	Color       string  `json:"color"`
	Visible     bool    `json:"visible"`
	Inside      bool    `json:"inside"`
	X           float64 `json:"x"`
	Y           float64 `json:"y"`
}

// cursorsShown reads the remoteCursors hook and the overlay's carets.
func (p *docsPerson) cursorsShown(doc string) ([]remoteCursor, []overlayCaret, error) {
	cs, err := eval[[]remoteCursor](p.browser, fmt.Sprintf(`window.huddle.remoteCursors(%q)`, doc))
	if err != nil {
		return nil, nil, err
	}
	carets, err := eval[[]overlayCaret](p.browser, `[...document.querySelectorAll('#doc-overlay .rc-caret')].map((c) => {
		const r = c.getBoundingClientRect(), ta = document.getElementById('doc-text').getBoundingClientRect();
		const flag = c.querySelector('.rc-flag');
		return {participant: c.dataset.participant, flag: flag ? flag.textContent : '',
			color: getComputedStyle(c).borderLeftColor,
			visible: r.height > 0 && getComputedStyle(c).borderLeftWidth !== '0px',
			inside: r.left >= ta.left - 2 && r.right <= ta.right + 2 && r.top >= ta.top - 2 && r.bottom <= ta.bottom + 2,
			x: r.left, y: r.top};
	})`)
	return cs, carets, err
}
