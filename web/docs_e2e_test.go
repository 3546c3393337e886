package web_test

// Shared documents in the page, end to end: people in their own chromium
// profiles type into the document panel, against the real server; the
// tests are in docs_test.go, the helpers in docs_people_test.go.

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// testDocsConcurrentTyping: two people type into one document at the same
// time (keystrokes through chromedp, with non-ASCII and an emoji), at its
// start and at its end. Both end with the same text, with each one's typing
// intact, and each shows the other's caret, with the right name, in the
// remoteCursors hook and drawn over the textarea.
func testDocsConcurrentTyping(t *testing.T, env docsEnv) {
	start := time.Now()
	alice := joinDocs(t, env, "alice", "Alice", true)
	bob := joinDocs(t, env, "bob", "Bob", true)
	initial := "Shared notes\nsecond line\n"
	doc, err := eval[string](alice.browser, fmt.Sprintf(`window.huddle.createDoc('Notes', %q)`, initial))
	if err != nil || doc == "" {
		t.Fatalf("createDoc: %q %v", doc, err)
	}
	// Bob's page hears about the new document without asking.
	waitFor(t, 10*time.Second, "bob's list to show the document", func() (bool, string) {
		docs, err := eval[[]map[string]any](bob.browser, `window.huddle.docs()`)
		for _, d := range docs {
			if d["id"] == doc && d["title"] == "Notes" {
				return true, ""
			}
		}
		return false, fmt.Sprint(docs, err)
	})
	alice.openDoc(t, doc)
	bob.openDoc(t, doc)
	alice.focusAt(t, -1)
	bob.focusAt(t, 0)

	aliceTyped := "Alice: héllo wörld 😀 ok"
	bobTyped := "Bob: ça va 🎉 "
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range []struct {
		p    *docsPerson
		keys string
	}{{alice, aliceTyped}, {bob, bobTyped}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.p.do(30*time.Second, chromedp.SendKeys(chromedp.ID("doc-text"), c.keys))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("typing %d: %v", i, err)
		}
	}
	final := waitConverged(t, doc, alice, bob)
	want := bobTyped + initial + aliceTyped
	if final.Text != want {
		t.Errorf("converged on %q, want %q (each person's typing intact where they typed)", final.Text, want)
	}
	t.Logf("converged at rev %d: %q (%.1fs after start)", final.Rev, final.Text, time.Since(start).Seconds())

	// Bob selects "notes" (code points after his typing); Alice's caret is at the end.
	sel := utf8.RuneCountInString(bobTyped) + len("Shared ")
	if _, err := eval[bool](bob.browser, fmt.Sprintf(`(() => { const ta = document.getElementById('doc-text');
		const cps = [...ta.value]; const a = cps.slice(0, %d).join('').length, b = cps.slice(0, %d).join('').length;
		ta.focus(); ta.setSelectionRange(a, b, 'forward'); ta.dispatchEvent(new Event('select')); return true; })()`, sel, sel+5)); err != nil {
		t.Fatal(err)
	}
	wantAt := map[string][2]int{
		bob.id:   {sel, sel + 5},
		alice.id: {utf8.RuneCountInString(want), utf8.RuneCountInString(want)},
	}
	for _, c := range []struct {
		viewer, other *docsPerson
	}{{alice, bob}, {bob, alice}} {
		w := wantAt[c.other.id]
		waitFor(t, 10*time.Second, fmt.Sprintf("%s to show %s's cursor", c.viewer.name, c.other.name), func() (bool, string) {
			cs, carets, err := c.viewer.cursorsShown(doc)
			if err != nil {
				return false, err.Error()
			}
			okHook, okDOM := false, false
			for _, x := range cs {
				okHook = okHook || (x.Participant == c.other.id && x.Name == c.other.name && x.Color != "" && x.Anchor == w[0] && x.Head == w[1])
			}
			for _, x := range carets {
				okDOM = okDOM || (x.Participant == c.other.id && x.Flag == c.other.name && x.Visible && x.Inside)
			}
			others := 0
			for _, x := range cs {
				if x.Participant != c.other.id {
					others++ // our own cursor must never be among them
				}
			}
			return okHook && okDOM && others == 0, fmt.Sprintf("hook %+v overlay %+v", cs, carets)
		})
	}
	// Bob's selection is highlighted too.
	waitFor(t, 5*time.Second, "alice's overlay to highlight bob's selection", func() (bool, string) {
		sel, err := eval[string](alice.browser, fmt.Sprintf(`[...document.querySelectorAll('#doc-overlay .rc-sel[data-participant=%q]')].map((s) => s.textContent).join('')`, bob.id))
		return err == nil && sel == "notes", fmt.Sprintf("%q %v", sel, err)
	})
	// Alice types at the start: Bob's selection, as Alice sees it, moves
	// with the text (transformed through her op), still over "notes".
	alice.focusAt(t, 0)
	alice.mustDo(10*time.Second, "type at the start", chromedp.SendKeys(chromedp.ID("doc-text"), "XY"))
	final = waitConvergedAfter(t, doc, final.Rev, alice, bob)
	waitFor(t, 10*time.Second, "bob's selection to move along in alice's view", func() (bool, string) {
		cs, _, err := alice.cursorsShown(doc)
		hl, _ := eval[string](alice.browser, fmt.Sprintf(`[...document.querySelectorAll('#doc-overlay .rc-sel[data-participant=%q]')].map((s) => s.textContent).join('')`, bob.id))
		for _, x := range cs {
			if x.Participant == bob.id {
				return x.Anchor == sel+2 && x.Head == sel+7 && hl == "notes", fmt.Sprintf("%+v %q", x, hl)
			}
		}
		return false, fmt.Sprint(cs, err)
	})

	// Both show who is in the document.
	for _, p := range []*docsPerson{alice, bob} {
		people, err := eval[[]string](p.browser, `[...document.querySelectorAll('#doc-people li')].map((li) => li.textContent)`)
		if err != nil || len(people) != 2 {
			t.Errorf("%s: people in the document %v (%v), want both", p.name, people, err)
		}
	}
	alice.screenshot("docs-two-people-alice.png")
	bob.screenshot("docs-two-people-bob.png")
	for _, p := range []*docsPerson{alice, bob} {
		if s, _ := p.status(doc); len(s.Errors) > 0 {
			t.Errorf("%s: document errors %+v", p.name, s.Errors)
		}
		if pr := p.problems(); len(pr) > 0 {
			t.Errorf("%s: page logged problems:\n%s", p.name, strings.Join(pr, "\n"))
		}
	}

	// Undo is the server's, per author: Bob's undo takes back his last
	// edit, not Alice's, and both see it.
	bob.mustDo(10*time.Second, "click undo", chromedp.Click(chromedp.ID("doc-undo")))
	after := waitConvergedAfter(t, doc, final.Rev, alice, bob)
	if !strings.HasSuffix(after.Text, aliceTyped) || after.Rev <= final.Rev || len(after.Text) >= len(final.Text) {
		t.Errorf("after Bob's undo: %q at rev %d, want Alice's text kept and some of Bob's gone", after.Text, after.Rev)
	}
	// Ctrl+Shift+Z in the editor is the server's redo: Bob's text is back.
	bob.mustDo(10*time.Second, "press ctrl+shift+z",
		chromedp.Focus(chromedp.ID("doc-text")),
		chromedp.KeyEvent("z", chromedp.KeyModifiers(chromedp.ModifierCtrl|chromedp.ModifierShift)))
	if redone := waitConvergedAfter(t, doc, after.Rev, alice, bob); redone.Text != final.Text {
		t.Errorf("after Bob's redo: %q, want %q", redone.Text, final.Text)
	}

	// Bob closes the document: his cursor and his name go from Alice's editor.
	bob.mustDo(10*time.Second, "close the document", chromedp.Click(chromedp.ID("doc-close")))
	waitFor(t, 10*time.Second, "alice to drop bob's cursor and presence", func() (bool, string) {
		cs, carets, err := alice.cursorsShown(doc)
		people, _ := eval[[]string](alice.browser, `[...document.querySelectorAll('#doc-people li')].map((li) => li.dataset.participant)`)
		return err == nil && len(cs) == 0 && len(carets) == 0 && fmt.Sprint(people) == "["+alice.id+"]", fmt.Sprint(cs, carets, people, err)
	})
}

// testDocsLargeDocument: a 1 MB document (created from the page: a
// docCreate of ~1.2 MB of JSON, chunked) opens in a second browser over
// the data channel, and a 200 KB paste is applied, acknowledged and seen by
// the other browser.
func testDocsLargeDocument(t *testing.T, env docsEnv) {
	testStart := time.Now()
	alice := joinDocs(t, env, "alice", "Alice", true)
	bob := joinDocs(t, env, "bob", "Bob", true)
	start := time.Now()
	t.Logf("joined in %.1fs", time.Since(testStart).Seconds())
	doc, err := eval[string](alice.browser, `(() => {
		const line = 'The quick brown fox jumps over the lazy dog — déjà vu 😀 #';
		const parts = [];
		let n = 0;
		for (let i = 0; n < 1000000; i++) {
			const l = line + i + '\n';
			parts.push(l);
			n += [...l].length;
		}
		const s = [...parts.join('')].slice(0, 1000000).join('');
		return window.huddle.createDoc('Big', s);
	})()`)
	if err != nil || doc == "" {
		t.Fatalf("create a 1 MB document: %q %v", doc, err)
	}
	bob.openDoc(t, doc)
	bs, err := bob.status(doc)
	if err != nil || bs.Len != 1000000 || bs.State != "synchronized" {
		t.Fatalf("bob opened the big document: %+v %v, want 1,000,000 code points", bs, err)
	}
	t.Logf("1 MB document created and opened in %.1fs", time.Since(start).Seconds())
	start = time.Now()
	alice.openDoc(t, doc)
	t.Logf("alice opened it in %.1fs", time.Since(start).Seconds())
	start = time.Now()
	// A 200 KB paste in the middle, as the browser does it: the value
	// changes, then an input event.
	pasteLen, err := eval[int](alice.browser, `(() => {
		const ta = document.getElementById('doc-text');
		let paste = '';
		while (paste.length < 200000) paste += 'pasted ✂ text 🎉 ' + paste.length + '\n';
		const mid = 500000;
		ta.focus();
		ta.value = ta.value.slice(0, mid) + paste + ta.value.slice(mid);
		ta.setSelectionRange(mid + paste.length, mid + paste.length);
		ta.dispatchEvent(new InputEvent('input', {inputType: 'insertFromPaste', bubbles: true}));
		return [...paste].length;
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	final := waitConverged(t, doc, alice, bob)
	if final.Len != 1000000+pasteLen {
		t.Errorf("after the paste both have %d code points, want %d", final.Len, 1000000+pasteLen)
	}
	t.Logf("200 KB paste acknowledged and seen by bob in %.1fs (rev %d)", time.Since(start).Seconds(), final.Rev)
	// Typing goes on after it.
	start = time.Now()
	alice.focusAt(t, 0)
	// Each keystroke re-lays out 1.2 MB of text: slow on a loaded machine.
	alice.mustDo(60*time.Second, "type", chromedp.SendKeys(chromedp.ID("doc-text"), "ok "))
	final = waitConverged(t, doc, alice, bob)
	if final.Len != 1000000+pasteLen+3 {
		t.Errorf("after typing both have %d code points, want %d", final.Len, 1000000+pasteLen+3)
	}
	t.Logf("3 keystrokes typed and seen by bob in %.1fs", time.Since(start).Seconds())
}

// testDocsReadOnly: a participant whose token lacks editDocs sees the
// document and the edits of others, but the editor is read-only with a
// notice; an edit forced through anyway is refused by the server with a
// visible error, and the page goes back to the server's text.
func testDocsReadOnly(t *testing.T, env docsEnv) {
	ed := joinDocs(t, env, "editor", "Edna", true)
	reader := joinDocs(t, env, "reader", "Rita", false)
	doc, err := eval[string](ed.browser, `window.huddle.createDoc('Minutes', 'Agreed: ship it.\n')`)
	if err != nil || doc == "" {
		t.Fatalf("createDoc: %q %v", doc, err)
	}
	ed.openDoc(t, doc)
	reader.openDoc(t, doc)
	ui, err := eval[map[string]any](reader.browser, `({readOnly: document.getElementById('doc-text').readOnly,
		notice: !document.getElementById('doc-readonly').hidden && document.getElementById('doc-readonly').getBoundingClientRect().height > 0,
		undo: document.getElementById('doc-undo').disabled, hook: window.huddle.docReadOnly(`+fmt.Sprintf("%q", doc)+`),
		noCreate: document.getElementById('doc-create').hidden,
		changeButtons: document.querySelectorAll('#doc-list .doc-rename, #doc-list .doc-delete').length})`)
	if err != nil || ui["readOnly"] != true || ui["notice"] != true || ui["undo"] != true || ui["hook"] != true ||
		ui["noCreate"] != true || ui["changeButtons"] != float64(0) {
		t.Errorf("reader's editor %v (%v), want a read-only textarea, a visible notice, undo disabled, no create, rename or delete", ui, err)
	}
	// Typing does nothing in a read-only textarea.
	reader.focusAt(t, -1)
	reader.mustDo(10*time.Second, "type into the read-only editor", chromedp.SendKeys(chromedp.ID("doc-text"), "nope"))

	ed.focusAt(t, -1)
	ed.mustDo(10*time.Second, "type", chromedp.SendKeys(chromedp.ID("doc-text"), "Next: demo."))
	final := waitConverged(t, doc, ed, reader)
	if final.Text != "Agreed: ship it.\nNext: demo." {
		t.Errorf("reader sees %q, want the editor's text", final.Text)
	}

	// Force an edit through: make the textarea writable and fire input.
	if _, err := eval[bool](reader.browser, `(() => { const ta = document.getElementById('doc-text');
		ta.readOnly = false; ta.value += ' HACKED'; ta.dispatchEvent(new InputEvent('input', {bubbles: true})); return true; })()`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the refusal to show", func() (bool, string) {
		box, err := eval[map[string]any](reader.browser, `(() => { const e = document.getElementById('doc-error');
			return {text: e.textContent, visible: !e.hidden && e.getBoundingClientRect().height > 0,
				codes: window.huddle.docErrors().map((x) => x.code)}; })()`)
		if err != nil {
			return false, err.Error()
		}
		codes := fmt.Sprint(box["codes"])
		return box["visible"] == true && strings.Contains(fmt.Sprint(box["text"]), "read-only") &&
			(strings.Contains(codes, "read_only") || strings.Contains(codes, "forbidden")), fmt.Sprint(box)
	})
	// Nothing changed on the server; the reader's page shows its text again.
	final = waitConverged(t, doc, ed, reader)
	if final.Text != "Agreed: ship it.\nNext: demo." {
		t.Errorf("after the refused edit: %q, want the editor's text unchanged", final.Text)
	}
	if ro, _ := eval[bool](reader.browser, `document.getElementById('doc-text').readOnly`); !ro {
		t.Errorf("reader's textarea is writable again after reloading the document")
	}
	reader.screenshot("docs-read-only.png")
}

func docTitles(b *browser) ([]string, error) {
	return eval[[]string](b, `[...document.querySelectorAll('#doc-list li[data-doc-id] .doc-open')].map((x) => x.textContent)`)
}

// testDocsListAndHistory: the panel's buttons, as people use them. Alice
// creates a document by typing a title (it opens), types, names a version,
// types more, restores the version from the history list (both see the old
// text again, as a new revision); Bob renames the document and then deletes
// it with two clicks, and Alice's list and editor follow.
func testDocsListAndHistory(t *testing.T, env docsEnv) {
	alice := joinDocsWith(t, env, "alice", "Alice", protocol.Grants{Publish: true, Subscribe: true, PublishData: true, EditDocs: true, RoomAdmin: true})
	bob := joinDocs(t, env, "bob", "Bob", true)
	alice.mustDo(10*time.Second, "create a document",
		chromedp.SendKeys(chromedp.ID("doc-new-title"), "Agenda"),
		chromedp.Click(`#doc-create button`),
		chromedp.WaitVisible(chromedp.ID("doc-text")),
	)
	var doc string
	waitFor(t, 10*time.Second, "both lists to show Agenda", func() (bool, string) {
		a, _ := docTitles(alice.browser)
		b, _ := docTitles(bob.browser)
		doc, _ = eval[string](alice.browser, `(window.huddle.docs()[0] || {}).id || ''`)
		return fmt.Sprint(a) == "[Agenda]" && fmt.Sprint(b) == "[Agenda]" && doc != "", fmt.Sprint(a, b)
	})
	// Clicked from script in one step: the list re-renders on presence
	// changes, and a node found first may be gone by the click.
	if _, err := eval[bool](bob.browser, `(() => { const b = document.querySelector('#doc-list .doc-open'); if (b) b.click(); return !!b; })()`); err != nil {
		t.Fatalf("bob: open it from the list: %v", err)
	}
	waitFor(t, 10*time.Second, "bob to open it", func() (bool, string) {
		s, err := bob.status(doc)
		return err == nil && s.State == "synchronized", fmt.Sprint(s, err)
	})
	alice.focusAt(t, -1)
	alice.mustDo(10*time.Second, "type", chromedp.SendKeys(chromedp.ID("doc-text"), "1. budget"))
	v1 := waitConverged(t, doc, alice, bob)
	alice.mustDo(10*time.Second, "name a version",
		chromedp.Click(chromedp.ID("doc-history-toggle")),
		chromedp.WaitVisible(chromedp.ID("doc-version-name")),
		chromedp.SendKeys(chromedp.ID("doc-version-name"), "first draft"),
		chromedp.Click(`#doc-version-form button`),
	)
	waitFor(t, 10*time.Second, "the version in the history list", func() (bool, string) {
		v, err := eval[[]string](alice.browser, `[...document.querySelectorAll('#doc-versions li span')].map((x) => x.textContent)`)
		return err == nil && len(v) > 0 && strings.HasPrefix(v[0], "first draft"), fmt.Sprint(v, err)
	})
	alice.focusAt(t, -1)
	alice.mustDo(10*time.Second, "type more", chromedp.SendKeys(chromedp.ID("doc-text"), "\n2. hiring"))
	v2 := waitConvergedAfter(t, doc, v1.Rev, alice, bob)
	if v2.Text != "1. budget\n2. hiring" {
		t.Fatalf("text %q", v2.Text)
	}
	alice.clickRendered(10*time.Second, "restore the version", `#doc-versions li:first-child .doc-restore`)
	restored := waitConvergedAfter(t, doc, v2.Rev, alice, bob)
	if restored.Text != "1. budget" {
		t.Errorf("after restoring %q: %q, want %q", "first draft", restored.Text, "1. budget")
	}

	// Alice is a room admin: she locks the document, and Bob's editor
	// becomes read-only with a notice; she unlocks it, and he can type.
	if n, _ := eval[int](bob.browser, `document.querySelectorAll('#doc-list .doc-lock').length`); n != 0 {
		t.Errorf("bob (no roomAdmin) is offered %d lock buttons", n)
	}
	editorLock := func(want bool) {
		waitFor(t, 10*time.Second, fmt.Sprintf("bob's editor read-only=%v", want), func() (bool, string) {
			ui, err := eval[map[string]any](bob.browser, `({ro: document.getElementById('doc-text').readOnly,
				notice: document.getElementById('doc-readonly').hidden ? '' : document.getElementById('doc-readonly').textContent})`)
			return err == nil && ui["ro"] == want && (strings.Contains(fmt.Sprint(ui["notice"]), "Locked") == want), fmt.Sprint(ui, err)
		})
	}
	alice.clickRendered(10*time.Second, "lock", `#doc-list .doc-lock`)
	editorLock(true)
	alice.clickRendered(10*time.Second, "unlock", `#doc-list .doc-lock`)
	editorLock(false)
	bob.focusAt(t, -1)
	bob.mustDo(10*time.Second, "type after the unlock", chromedp.SendKeys(chromedp.ID("doc-text"), "!"))
	if s := waitConvergedAfter(t, doc, restored.Rev, alice, bob); s.Text != "1. budget!" {
		t.Errorf("after the unlock: %q", s.Text)
	}

	bob.clickRendered(10*time.Second, "rename", `#doc-list .doc-rename`)
	bob.mustDo(10*time.Second, "rename",
		chromedp.WaitVisible(`#doc-list .doc-rename-input`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#doc-list .doc-rename-input').value = ''`),
		chromedp.SendKeys(`#doc-list .doc-rename-input`, "Agenda (Tuesday)\r"),
	)
	waitFor(t, 10*time.Second, "alice to see the new title", func() (bool, string) {
		a, _ := docTitles(alice.browser)
		title, _ := eval[string](alice.browser, `document.getElementById('doc-title').textContent`)
		return fmt.Sprint(a) == "[Agenda (Tuesday)]" && title == "Agenda (Tuesday)", fmt.Sprint(a, title)
	})
	bob.clickRendered(10*time.Second, "delete", `#doc-list .doc-delete`)
	bob.clickRendered(10*time.Second, "delete, armed", `#doc-list .doc-delete.armed`)
	waitFor(t, 10*time.Second, "the document to go from both pages", func() (bool, string) {
		a, _ := docTitles(alice.browser)
		b, _ := docTitles(bob.browser)
		hidden, _ := eval[bool](alice.browser, `document.getElementById('doc-editor').hidden`)
		return len(a) == 0 && len(b) == 0 && hidden, fmt.Sprint(a, b, hidden)
	})
	for _, p := range []*docsPerson{alice, bob} {
		if pr := p.problems(); len(pr) > 0 {
			t.Errorf("%s: page logged problems:\n%s", p.name, strings.Join(pr, "\n"))
		}
	}
}

// testDocsRejoin: leaving and joining the same room again keeps the open
// document: the page opens it again from its revision and applies the
// catch-up. Without lose, Bob types while Alice is away. With lose, the
// submit (first round) or the ack (second round) of Alice's typing is lost
// in her page before she leaves (docs_loss_test.go): the page takes its
// own op in the catch-up as the ack, or resubmits it with the same id, and
// it is applied exactly once.
func testDocsRejoin(t *testing.T, env docsEnv, lose bool) {
	alice := joinDocs(t, env, "alice", "Alice", true)
	bob := joinDocs(t, env, "bob", "Bob", true)
	doc, err := eval[string](alice.browser, `window.huddle.createDoc('Plan', 'base\n')`)
	if err != nil || doc == "" {
		t.Fatalf("createDoc: %q %v", doc, err)
	}
	alice.openDoc(t, doc)
	bob.openDoc(t, doc)
	rev := waitConverged(t, doc, alice, bob).Rev

	rounds := []string{"away"}
	if lose {
		rounds = []string{"submit", "ack"}
	}
	for i, what := range rounds {
		typed := fmt.Sprintf("[%s %d é😀]", what, i)
		lostBefore, _ := eval[int](alice.browser, `window.__huddleLost || 0`)
		if lose {
			loseNext(t, alice, what)
		}
		alice.focusAt(t, -1)
		alice.mustDo(10*time.Second, "type", chromedp.SendKeys(chromedp.ID("doc-text"), typed))
		if lose {
			bob.focusAt(t, 0)
			bob.mustDo(10*time.Second, "type", chromedp.SendKeys(chromedp.ID("doc-text"), "b"))
			time.Sleep(300 * time.Millisecond)
			if st, _ := alice.status(doc); st.State == "synchronized" {
				t.Fatalf("alice is synchronized although her %s was lost: %+v", what, st)
			}
			waitFor(t, 10*time.Second, "alice's "+what+" to be lost", func() (bool, string) {
				n, err := eval[int](alice.browser, `window.__huddleLost || 0`)
				return err == nil && n > lostBefore, fmt.Sprint(n, err)
			})
			loseNext(t, alice, "")
		} else {
			waitConvergedAfter(t, doc, rev, alice, bob)
		}
		alice.mustDo(10*time.Second, "leave", chromedp.Click(chromedp.ID("leave")))
		waitState(t, alice.browser, "left")
		if !lose {
			bob.focusAt(t, 0)
			bob.mustDo(10*time.Second, "type while alice is away", chromedp.SendKeys(chromedp.ID("doc-text"), "bob was here "))
		}
		alice.mustDo(10*time.Second, "join again", chromedp.Click(chromedp.ID("join"), chromedp.NodeVisible))
		waitState(t, alice.browser, "joined")
		final := waitConvergedAfter(t, doc, rev, alice, bob)
		rev = final.Rev
		if strings.Count(final.Text, typed) != 1 || (!lose && !strings.HasPrefix(final.Text, "bob was here ")) {
			t.Fatalf("after %s and joining again: %q, want %q exactly once (and Bob's edits)", what, final.Text, typed)
		}
		shown, _ := eval[string](alice.browser, `document.getElementById('doc-text').value`)
		if shown != final.Text {
			t.Errorf("alice's editor shows %q, want %q", shown, final.Text)
		}
		t.Logf("%s: converged on %q at rev %d", what, final.Text, final.Rev)
	}
	// Typing goes on after the re-join.
	alice.focusAt(t, -1)
	alice.mustDo(10*time.Second, "type after rejoining", chromedp.SendKeys(chromedp.ID("doc-text"), "!"))
	if final := waitConvergedAfter(t, doc, rev, alice, bob); !strings.HasSuffix(final.Text, "!") {
		t.Errorf("after typing again: %q", final.Text)
	}
}

// testDocsComposing: while an input method is composing in Bob's editor,
// remote ops must not touch the textarea (setting its value would cancel
// the composition); they wait, and Bob's own input meanwhile, made on the
// lagging view, is rebased over them. When the composition ends the
// textarea catches up and both converge.
func testDocsComposing(t *testing.T, env docsEnv) {
	alice := joinDocs(t, env, "alice", "Alice", true)
	bob := joinDocs(t, env, "bob", "Bob", true)
	doc, err := eval[string](alice.browser, `window.huddle.createDoc('IME', 'base')`)
	if err != nil || doc == "" {
		t.Fatalf("createDoc: %q %v", doc, err)
	}
	alice.openDoc(t, doc)
	bob.openDoc(t, doc)
	bob.focusAt(t, -1)
	if _, err := eval[bool](bob.browser, `document.getElementById('doc-text').dispatchEvent(new CompositionEvent('compositionstart', {data: ''})) || true`); err != nil {
		t.Fatal(err)
	}
	alice.focusAt(t, 0)
	alice.mustDo(10*time.Second, "type", chromedp.SendKeys(chromedp.ID("doc-text"), "ABC "))
	waitFor(t, 10*time.Second, "bob's model to have Alice's typing while his textarea waits", func() (bool, string) {
		s, err := bob.status(doc)
		shown, _ := eval[string](bob.browser, `document.getElementById('doc-text').value`)
		return err == nil && s.Text == "ABC base" && shown == "base", fmt.Sprintf("model %q shown %q %v", s.Text, shown, err)
	})
	// Bob's input method commits "日本" at the end of what he sees.
	if _, err := eval[bool](bob.browser, `(() => { const ta = document.getElementById('doc-text');
		ta.value = 'base日本'; ta.setSelectionRange(6, 6);
		ta.dispatchEvent(new InputEvent('input', {bubbles: true, isComposing: true, data: '日本'}));
		ta.dispatchEvent(new CompositionEvent('compositionend', {data: '日本'}));
		return true; })()`); err != nil {
		t.Fatal(err)
	}
	final := waitConverged(t, doc, alice, bob)
	if final.Text != "ABC base日本" {
		t.Errorf("converged on %q, want %q", final.Text, "ABC base日本")
	}
	waitFor(t, 5*time.Second, "bob's textarea to catch up, caret after his text", func() (bool, string) {
		v, err := eval[map[string]any](bob.browser, `(() => { const ta = document.getElementById('doc-text');
			return {value: ta.value, caret: ta.selectionStart}; })()`)
		return err == nil && v["value"] == "ABC base日本" && v["caret"] == float64(10), fmt.Sprint(v, err)
	})
}
