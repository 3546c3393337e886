package web_test

// The page's OT (static/ot.js), framing (static/framing.js) and client
// state machine (static/docclient.js) must be wire-compatible with the Go
// engine (collab/ot) and framing (signaling/protocol): these tests run the
// JavaScript in chromium and compare it with Go on random input that mixes
// ASCII, 2- and 3-byte characters and astral-plane emoji (surrogate pairs
// in JavaScript), so that any confusion of bytes, UTF-16 units and code
// points shows up.

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
	"github.com/huddle-rtc/huddle/web"
)

// jsPage serves the page's modules and a test page that loads them into
// window.t, without the page's CSP (the test page has none).
func jsPage(t *testing.T) *browser {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	mux.Handle("/testdata/", http.StripPrefix("/testdata/", http.FileServer(http.Dir("testdata"))))
	mux.HandleFunc("/jstest.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><meta charset="utf-8"><script type="module">
import * as ot from '/ot.js';
import * as framing from '/framing.js';
import * as docclient from '/docclient.js';
import * as sim from '/testdata/docsim.js';
import * as adaptive from '/adaptive.js';
import * as otclient from '/otclient.js';
window.t = { ot, framing, docclient, sim, adaptive, otclient };
</script>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b := newBrowser(t, "js")
	b.dumpLogsOnFailure()
	b.mustDo(20*time.Second, "open the test page",
		chromedp.Navigate(srv.URL+"/jstest.html"),
		chromedp.Poll[chromedp.Void](`!!window.t`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	return b
}

var alphabet = []rune("abcdefgh \néßü€中文😀🎉𝄞")

func randText(r *rand.Rand, maxLen int) string {
	n := r.Intn(maxLen + 1)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteRune(alphabet[r.Intn(len(alphabet))])
	}
	return b.String()
}

// randOp returns a random valid op for a document of docLen code points.
func randOp(r *rand.Rand, docLen int) ot.Op {
	var op ot.Op
	left := docLen
	for left > 0 || r.Intn(3) == 0 {
		switch r.Intn(4) {
		case 0:
			if s := randText(r, 4); s != "" {
				op = op.Insert(s)
			}
		case 1:
			if left > 0 {
				n := 1 + r.Intn(min(left, 5))
				op = op.Delete(n)
				left -= n
			}
		default:
			if left > 0 {
				n := 1 + r.Intn(min(left, 8))
				op = op.Retain(n)
				left -= n
			}
		}
		if r.Intn(10) == 0 {
			break
		}
	}
	return op.Normalize()
}

// withContext gives some inserts of op the tie-break context that ops
// carry ({"i": s, "a": n, "g": m, "s": seen, "h": 1} on the wire): small values
// that make ties go every way, and now and then values at the wire's
// limits, where Go's counters would overflow if Transform did not
// saturate, and where a JavaScript number would stop being exact.
func withContext(r *rand.Rand, op ot.Op) ot.Op {
	for i := range op {
		if op[i].Kind == ot.Insert && r.Intn(3) == 0 {
			op[i].After, op[i].Gone, op[i].Seen = int32(r.Intn(3)), int32(r.Intn(2)), int64(r.Intn(3))
			op[i].Held = r.Intn(2) == 0
			if r.Intn(8) == 0 {
				op[i].After, op[i].Gone = ot.MaxContext-int32(r.Intn(3)), ot.MaxContext-int32(r.Intn(2))
				op[i].Seen = ot.MaxSeen - int64(r.Intn(2))
			}
		}
	}
	return op
}

type otCase struct {
	Doc   string `json:"doc"`
	A     ot.Op  `json:"a"`
	B     ot.Op  `json:"b"`
	C     ot.Op  `json:"c"` // applies after A
	Pos   int    `json:"pos"`
	Other string `json:"other"`
}

type otResult struct {
	Apply   string          `json:"apply"`
	Left    json.RawMessage `json:"left"`
	Right   json.RawMessage `json:"right"`
	Compose json.RawMessage `json:"compose"`
	PosOwn  int             `json:"posOwn"`
	PosElse int             `json:"posElse"`
	Diff    json.RawMessage `json:"diff"`
	CPLen   int             `json:"cpLen"`
	Err     string          `json:"err"`
}

func opJSON(t *testing.T, op ot.Op) string {
	b, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	if op == nil {
		return "[]"
	}
	return string(b)
}

func sameOp(t *testing.T, got json.RawMessage, want ot.Op) bool {
	var g ot.Op
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("JS op %s does not parse in Go: %v", got, err)
		return false
	}
	// The same wire form too (both sides produce canonical ops), not just
	// the same effect.
	var gv, wv any
	if json.Unmarshal(got, &gv) != nil || json.Unmarshal([]byte(opJSON(t, want)), &wv) != nil {
		return false
	}
	return g.Equal(want) && reflect.DeepEqual(gv, wv)
}

// TestJSOTMatchesGo: apply, transform (both sides of an insert tie),
// compose, cursor transform and diff agree with collab/ot on 1500 random
// cases.
func TestJSOTMatchesGo(t *testing.T) {
	b := jsPage(t)
	r := rand.New(rand.NewSource(7))
	var cases []otCase
	for range 1500 {
		doc := randText(r, 12)
		n := utf8.RuneCountInString(doc)
		a, bb := withContext(r, randOp(r, n)), withContext(r, randOp(r, n))
		after, err := ot.Apply(doc, a)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, otCase{Doc: doc, A: a, B: bb, C: randOp(r, utf8.RuneCountInString(after)), Pos: r.Intn(n + 1), Other: randText(r, 12)})
	}
	in, _ := json.Marshal(cases)
	results, err := eval[[]otResult](b, `(() => { const {ot} = window.t; return `+string(in)+`.map((c) => {
		try {
			const applied = ot.apply(c.doc, c.a);
			return {
				apply: applied,
				left: ot.transform(c.a, c.b, ot.LEFT),
				right: ot.transform(c.a, c.b, ot.RIGHT),
				compose: ot.compose(c.a, c.c),
				posOwn: ot.transformPosition(c.pos, c.a, true),
				posElse: ot.transformPosition(c.pos, c.a, false),
				diff: ot.diff(c.doc, c.other),
				cpLen: ot.cpLen(c.doc),
			};
		} catch (err) { return {err: String(err)}; }
	}); })()`)
	if err != nil {
		t.Fatal(err)
	}
	fails := 0
	for i, c := range cases {
		got := results[i]
		fail := func(what string, g, w any) {
			fails++
			if fails < 10 {
				t.Errorf("case %d doc %q a %v b %v c %v: %s: JS %v, Go %v", i, c.Doc, c.A, c.B, c.C, what, g, w)
			}
		}
		if got.Err != "" {
			fail("error", got.Err, nil)
			continue
		}
		if w, _ := ot.Apply(c.Doc, c.A); got.Apply != w {
			fail("apply", got.Apply, w)
		}
		if w := ot.Transform(c.A, c.B, ot.Left); !sameOp(t, got.Left, w) {
			fail("transform left", string(got.Left), w)
		}
		if w := ot.Transform(c.A, c.B, ot.Right); !sameOp(t, got.Right, w) {
			fail("transform right", string(got.Right), w)
		}
		if w := ot.Compose(c.A, c.C); !sameOp(t, got.Compose, w) {
			fail("compose", string(got.Compose), w)
		}
		if w := ot.TransformPosition(c.Pos, c.A, true); got.PosOwn != w {
			fail("position (own)", got.PosOwn, w)
		}
		if w := ot.TransformPosition(c.Pos, c.A, false); got.PosElse != w {
			fail("position (other's)", got.PosElse, w)
		}
		if w := ot.Diff(c.Doc, c.Other); !sameOp(t, got.Diff, w) {
			fail("diff", string(got.Diff), w)
		}
		if w := utf8.RuneCountInString(c.Doc); got.CPLen != w {
			fail("code points", got.CPLen, w)
		}
	}
	if fails > 0 {
		t.Fatalf("%d of %d cases differ", fails, len(cases))
	}

	// Malformed ops are refused, as Go refuses them.
	for _, bad := range []string{`[0]`, `[-1]`, `[1.5]`, `[""]`, `[{"d":0}]`, `[{"x":1}]`, `[null]`, `[{"d":1,"e":2}]`,
		`[{"i":""}]`, `[{"i":"x","a":-1}]`, `[{"i":"x","g":1.5}]`, `[{"i":"x","d":1}]`, `[{"i":3}]`,
		`[{"i":"x","a":2147483648}]`, `[{"i":"x","s":-1}]`, `[{"i":"x","s":9007199254740992}]`, `[{"i":"x","s":1.5}]`,
		`[{"i":"x","h":2}]`, `[{"i":"x","h":true}]`} {
		refused, err := eval[bool](b, `(() => { try { window.t.ot.normalize(`+bad+`); return false; } catch (e) { return true; } })()`)
		if err != nil || !refused {
			t.Errorf("JS accepted malformed op %s (%v)", bad, err)
		}
		if _, err := ot.Parse([]byte(bad)); err == nil {
			t.Errorf("Go accepted %s; test is wrong", bad)
		}
	}
	// The page stamps what it types as the Go client does (held: typed
	// while an earlier edit was unacknowledged).
	for _, held := range []bool{false, true} {
		stamped, err := eval[json.RawMessage](b, fmt.Sprintf(`window.t.ot.stampSeen(window.t.ot.normalize([2, "ab", {"d": 1}, 1, {"i": "c", "a": 1}, 1, {"i": "d", "s": 4}]), 6, %v)`, held))
		if err != nil {
			t.Fatal(err)
		}
		want := `[2,{"i":"ab","s":7},{"d":1},1,{"i":"c","a":1,"s":7},1,{"i":"d","s":4}]`
		if held {
			want = `[2,{"i":"ab","s":7,"h":1},{"d":1},1,{"i":"c","a":1,"s":7,"h":1},1,{"i":"d","s":4}]`
		}
		if w, _ := ot.Parse([]byte(want)); !sameOp(t, stamped, w) {
			t.Errorf("stampSeen (held %v): JS %s, want %v", held, stamped, w)
		}
	}
	// The page's client marks an edit typed while another is in flight as
	// held, as collab/client does (TestStamps there: the same edits).
	sent, err := eval[json.RawMessage](b, `(() => {
		const c = new window.t.otclient.DocClient('a', 3, 'xy');
		const s1 = c.applyLocal([1, 'p']);
		c.applyLocal([2, 'q']);
		c.remote(4, [2, 'r']);
		c.applyLocal(['s']);
		return c.ack(5, s1.id).op;
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := ot.Parse([]byte(`[{"i":"s","s":5,"h":1},2,{"i":"q","s":4,"h":1}]`)); !sameOp(t, sent, want) {
		t.Errorf("buffered edits: JS sends %s, want %v", sent, want)
	}
	// An op past the end of the document is refused.
	if refused, err := eval[bool](b, `(() => { try { window.t.ot.apply('a😀', [3]); return false; } catch (e) { return true; } })()`); err != nil || !refused {
		t.Errorf("JS applied a retain past the end (%v)", err)
	}
}

// TestJSFramingMatchesGo: messages split by the page are reassembled by
// Go's Reassembler and the other way round; no frame exceeds 16 KiB of
// UTF-8 and no chunk starts or ends inside a code point (a surrogate pair in
// JavaScript), however the emoji fall on the boundaries.
func TestJSFramingMatchesGo(t *testing.T) {
	b := jsPage(t)
	for _, shift := range []int{0, 1, 2, 3} {
		// A JSON message of ~100 KB whose emoji straddle many cut points.
		var sb strings.Builder
		sb.WriteString(strings.Repeat("x", shift))
		for sb.Len() < 100_000 {
			sb.WriteString("ab😀é中🎉")
		}
		msg, _ := json.Marshal(map[string]any{"type": "docCreate", "title": "t", "text": sb.String()})

		frames, err := eval[[]string](b, `window.t.framing.splitFrames(`+string(mustJSON(string(msg)))+`, 7)`)
		if err != nil {
			t.Fatal(err)
		}
		if len(frames) < 2 {
			t.Fatalf("%d frames for a %d byte message", len(frames), len(msg))
		}
		var re protocol.Reassembler
		var whole []byte
		for i, f := range frames {
			if len(f) > protocol.MaxFrame {
				t.Errorf("frame %d is %d bytes, over %d", i, len(f), protocol.MaxFrame)
			}
			if !utf8.ValidString(f) {
				t.Errorf("frame %d is not valid UTF-8 (cut inside a code point)", i)
			}
			out, err := re.Add([]byte(f))
			if err != nil {
				t.Fatalf("Go reassembler refused JS frame %d: %v", i, err)
			}
			if out != nil {
				whole = out
			}
		}
		if string(whole) != string(msg) {
			t.Fatalf("shift %d: Go reassembled %d bytes, want the %d sent", shift, len(whole), len(msg))
		}

		// And Go's frames through the page's Reassembler.
		var goFrames []string
		for _, f := range protocol.SplitFrames(msg, 9, 0) {
			goFrames = append(goFrames, string(f))
		}
		in, _ := json.Marshal(goFrames)
		got, err := eval[string](b, `(() => { const r = new window.t.framing.Reassembler(); let out = null;
			for (const f of `+string(in)+`) { const m = r.add(f); if (m !== null) out = m; } return out; })()`)
		if err != nil || got != string(msg) {
			t.Fatalf("shift %d: JS reassembled %d bytes (%v), want %d", shift, len(got), err, len(msg))
		}
	}
	// Out-of-order chunks are refused.
	refused, err := eval[bool](b, `(() => { const r = new window.t.framing.Reassembler();
		r.add('#1:0:0:{"a"'); try { r.add('#1:2:1:}'); return false; } catch (e) { return true; } })()`)
	if err != nil || !refused {
		t.Errorf("JS reassembler accepted a skipped chunk (%v)", err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestJSClientConverges: several page clients (docclient.js's state
// machine) edit one document at random against a simulated server with
// random message interleavings; all converge on the server's text. A
// client whose in-flight op may or may not have reached the server before
// a reconnect catches up and resubmits it with the same id: applied once.
func TestJSClientConverges(t *testing.T) {
	b := jsPage(t)
	type simResult struct {
		Server  string `json:"server"`
		Revs    int    `json:"revs"`
		Clients []struct {
			Text  string `json:"text"`
			Rev   int    `json:"rev"`
			State string `json:"state"`
		} `json:"clients"`
	}
	for seed := 1; seed <= 40; seed++ {
		res, err := eval[simResult](b, fmt.Sprintf(`window.t.sim.simulate(%d, 3, 400)`, seed))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for i, c := range res.Clients {
			if c.Text != res.Server || c.Rev != res.Revs || c.State != "synchronized" {
				t.Fatalf("seed %d: client %d ends %q at rev %d (%s), server %q at %d", seed, i, c.Text, c.Rev, c.State, res.Server, res.Revs)
			}
		}
	}
	for _, applied := range []bool{false, true} {
		res, err := eval[map[string]string](b, fmt.Sprintf(`window.t.sim.reconnect(%v)`, applied))
		if err != nil {
			t.Fatal(err)
		}
		// "hello" + b's "!" at 5 + b's ">" at 0 + a's "X" at 0 (a's insert
		// was concurrent with ">" and is on the right of it).
		if res["server"] != res["client"] || res["state"] != "synchronized" || strings.Count(res["server"], "X") != 1 {
			t.Errorf("reconnect (applied before the drop: %v): %v", applied, res)
		}
		t.Logf("reconnect (applied before drop %v): %v", applied, res)
	}
}
