package ot

import (
	"errors"
	"math/rand"
	"testing"
)

// serialize plays the server: each op, made against the document its
// author had seen (base: how many logged ops), is transformed over the
// logged ops it missed with Right and appended. It returns the final text.
func serialize(t *testing.T, doc string, ops []Op, bases []int) string {
	t.Helper()
	var log []Op
	for i, op := range ops {
		for _, m := range log[bases[i]:] {
			op = Transform(op, m, Right)
		}
		doc = mustApply(t, doc, op)
		log = append(log, op)
	}
	return doc
}

// permutations of 0..n-1.
func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

// TestInsertNextToConcurrentDelete: in "abc" one author deletes "b", one
// types "x" after "b", one types "y" after "a", all concurrently. Whatever
// order the server receives them in, "y" stays left of where "b" was and
// "x" right of it: "ayxc" (the old rule gave "axyc" when the delete and
// "x" arrived first).
func TestInsertNextToConcurrentDelete(t *testing.T) {
	ops := []Op{
		Op{}.Retain(1).Delete(1),   // delete "b"
		Op{}.Retain(2).Insert("x"), // after "b"
		Op{}.Retain(1).Insert("y"), // after "a"
	}
	for _, p := range permutations(3) {
		in := []Op{ops[p[0]], ops[p[1]], ops[p[2]]}
		if got := serialize(t, "abc", in, []int{0, 0, 0}); got != "ayxc" {
			t.Errorf("order %v: %q, want \"ayxc\"", p, got)
		}
	}
}

// TestRunsInTwoRoundTrips is the example: on "X", A types "ab" and
// B types "cd", each in two round trips. Every arrival order keeps "ab" and
// "cd" whole (the old rule gave "acbdX").
func TestRunsInTwoRoundTrips(t *testing.T) {
	first := map[rune]Op{'a': Op{}.Insert("a"), 'c': Op{}.Insert("c")}
	next := map[rune]string{'a': "b", 'c': "d"}
	for _, p := range [][2]rune{{'a', 'c'}, {'c', 'a'}} {
		// Revisions 1 and 2 are the first keystrokes, in order p. The
		// author of revision 1 types its second keystroke having seen only
		// revision 1 (its own char at 0); the other author has seen both.
		log := []Op{first[p[0]], first[p[1]]}
		rev2 := []rune(serialize(t, "X", log, []int{0, 0}))
		at := 0
		for i, r := range rev2 {
			if r == p[1] {
				at = i + 1
			}
		}
		second := []Op{Op{}.Retain(1).Insert(next[p[0]]), Op{}.Retain(at).Insert(next[p[1]])}
		for _, order := range [][2]int{{0, 1}, {1, 0}} {
			ops := append(append([]Op{}, log...), second[order[0]], second[order[1]])
			bases := []int{0, 0, 1 + order[0], 1 + order[1]}
			got := serialize(t, "X", ops, bases)
			if got != "abcdX" && got != "cdabX" {
				t.Errorf("first keystrokes %c,%c, second in order %v: %q interleaves the runs", p[0], p[1], order, got)
			}
		}
	}
}

// TestTransformContext: the context Transform records on the insert that
// goes second, and the one it gains from deletes right before it.
func TestTransformContext(t *testing.T) {
	a := Op{}.Retain(1).Insert("xy")
	b := Op{}.Retain(1).Insert("abc")
	got := Transform(a, b, Right)
	if len(got) != 2 || got[1].After != 3 || got[1].Gone != 0 || got.String() != `[4,{"i":"xy","a":3}]` {
		t.Fatalf("loser: %v %+v", got, got)
	}
	if w := Transform(b, a, Left); w.String() != `[1,"abc"]` {
		t.Fatalf("winner: %v", w)
	}
	del := Op{}.Delete(1)
	if got := Transform(a, del, Right); got.String() != `[{"i":"xy","g":1}]` {
		t.Fatalf("after a delete: %v", got)
	}
}

// TestContextWireForm: inserts with context round-trip; bad context is
// refused; an insert without context stays a plain string.
func TestContextWireForm(t *testing.T) {
	op, err := Parse([]byte(`[2,{"i":"😀x","a":3,"g":1},{"d":2},1,{"i":"z"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if op[1].After != 3 || op[1].Gone != 1 || op[1].N != 2 || op.String() != `[2,{"i":"😀x","a":3,"g":1},{"d":2},1,"z"]` {
		t.Fatalf("parsed %v %+v", op, op)
	}
	seen, err := Parse([]byte(`[{"i":"x","s":9007199254740991}]`))
	if err != nil || seen[0].Seen != MaxSeen || seen.String() != `[{"i":"x","s":9007199254740991}]` {
		t.Fatalf("seen at the limit: %v %+v %v", seen, seen, err)
	}
	held, err := Parse([]byte(`[{"i":"x","s":3,"h":1},1,{"i":"y","h":0}]`))
	if err != nil || !held[0].Held || held[2].Held || held.String() != `[{"i":"x","s":3,"h":1},1,"y"]` {
		t.Fatalf("held: %v %+v %v", held, held, err)
	}
	for _, bad := range []string{`[{"i":""}]`, `[{"i":"x","a":-1}]`, `[{"i":"x","g":1.5}]`, `[{"i":"x","b":1}]`,
		`[{"i":5}]`, `[{"i":"x","d":1}]`, `[{"i":"\ud800"}]`, `[{"i":"x","a":99999999999}]`, `[{"i":"x","a":2147483648}]`,
		`[{"i":"x","s":-1}]`, `[{"i":"x","s":9007199254740992}]`, `[{"i":"x","s":1e3}]`,
		`[{"i":"x","h":2}]`, `[{"i":"x","h":true}]`, `[{"i":"x","h":-1}]`} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrInvalidOp) {
			t.Errorf("Parse(%s) = %v, want ErrInvalidOp", bad, err)
		}
	}
	if err := (Op{{Kind: Retain, N: 1, After: 1}}).Validate(); !errors.Is(err, ErrInvalidOp) {
		t.Errorf("context on a retain accepted: %v", err)
	}
}

// randContextOp is randOp with tie-break context on some inserts, as ops
// rebased by earlier transforms carry.
func randContextOp(r *rand.Rand, docLen int) Op {
	op := randOp(r, docLen)
	for i := range op {
		if op[i].Kind == Insert && r.Intn(2) == 0 {
			op[i].After, op[i].Gone, op[i].Seen = int32(r.Intn(3)), int32(r.Intn(3)), int64(r.Intn(3))
			op[i].Held = r.Intn(2) == 0
		}
	}
	return op
}

// TestConvergenceWithContext: TestConvergence for ops that carry context.
func TestConvergenceWithContext(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for i := 0; i < 20000; i++ {
		s := randText(r, 20)
		a, b := randContextOp(r, runeLen(s)), randContextOp(r, runeLen(s))
		a2, b2 := TransformPair(a, b, Left)
		if err := a2.Validate(); err != nil {
			t.Fatal(err)
		}
		x := mustApply(t, mustApply(t, s, a), b2)
		y := mustApply(t, mustApply(t, s, b), a2)
		if x != y {
			t.Fatalf("diverged on %q\na=%v b=%v\na'=%v b'=%v\n%q != %q", s, a, b, a2, b2, x, y)
		}
		back, err := Parse([]byte(a2.String()))
		if err != nil || !back.Equal(a2) {
			t.Fatalf("wire round trip of %v: %v %v", a2, back, err)
		}
	}
}

// FuzzTransformContext: FuzzTransform with context on the inserts.
func FuzzTransformContext(f *testing.F) {
	f.Add(uint8(10), []byte{0, 1, 2, 3, 3, 0, 1, 2, 0, 0}, uint8(3))
	f.Fuzz(func(t *testing.T, n uint8, data []byte, ctx uint8) {
		s := fuzzDoc(n)
		a, rest := fuzzOp(data, runeLen(s))
		b, _ := fuzzOp(rest, runeLen(s))
		for i := range a {
			if a[i].Kind == Insert {
				a[i].After, a[i].Gone, a[i].Seen = int32(ctx%3), int32(ctx/3%3), int64(ctx/81%3)
				a[i].Held = ctx&64 != 0
			}
		}
		for i := range b {
			if b[i].Kind == Insert {
				b[i].After, b[i].Gone, b[i].Seen = int32(ctx/9%3), int32(ctx/27%3), int64(ctx%2)
				b[i].Held = ctx&128 != 0
			}
		}
		a2, b2 := TransformPair(a, b, Left)
		x := mustApply(t, mustApply(t, s, a), b2)
		y := mustApply(t, mustApply(t, s, b), a2)
		if x != y {
			t.Fatalf("diverged: s=%q a=%v b=%v: %q != %q", s, a, b, x, y)
		}
	})
}

// TestContextSaturates: counters a client sends near the wire's limit stay
// at MaxContext when Transform adds to them, never wrapping negative (the
// server would refuse the rebased op, and the page would order it
// differently); the rebased op is still valid and round-trips.
func TestContextSaturates(t *testing.T) {
	a := Op{}.Retain(1).insertC(Component{Kind: Insert, N: 1, Text: "x", After: MaxContext - 1, Gone: MaxContext})
	b := Op{}.Retain(1).Insert("abc")
	got := Transform(a, b, Right)
	if err := got.Validate(); err != nil || got[1].After != MaxContext || got[1].Gone != MaxContext {
		t.Fatalf("rebased %v (%+v): %v", got, got, err)
	}
	if back, err := Parse([]byte(got.String())); err != nil || !back.Equal(got) {
		t.Fatalf("wire round trip of %v: %v %v", got, back, err)
	}
	del := Op{}.Delete(1)
	if got := Transform(a, del, Right); got[0].Gone != MaxContext || got.Validate() != nil {
		t.Fatalf("after a delete: %v %+v", got, got)
	}
}

// stamped is an insert of s typed having seen revisions 0..rev.
func stamped(s string, rev int64) Component {
	return Component{Kind: Insert, N: runeLen(s), Text: s, Seen: rev + 1}
}

// TestBufferedKeystrokeKeepsItsPlace: on "oX", A types "k" after "o" (rev
// 1), then "rs" after "k" while "k" is still in flight (A has seen rev 0
// only). B sees "k", types "'" after it, and, before A's "rs" reaches it,
// " c" after its own "'". A's "rs" reaches the server after B's "'": it
// was typed first, so it goes first, and B's run, typed after what B
// could see of the text, follows it whole: "okrs' cX". Arrival order alone
// gave "ok'rs cX" (B's run split); the context alone "ok' crsX" (A's
// keystroke pushed past B's whole run).
func TestBufferedKeystrokeKeepsItsPlace(t *testing.T) {
	k := Op{}.Retain(1).insertC(stamped("k", 0))
	rs := Op{}.Retain(2).insertC(stamped("rs", 0))
	quote := Op{}.Retain(2).insertC(stamped("'", 1))
	run := Op{}.Retain(3).insertC(stamped(" c", 2))
	if got := serialize(t, "oX", []Op{k, quote, rs, run}, []int{0, 1, 1, 2}); got != "okrs' cX" {
		t.Errorf("got %q, want \"okrs' cX\"", got)
	}
	// Either arrival order of the tie.
	for _, ops := range [][]Op{{k, quote, rs}, {k, rs, quote}} {
		if got := serialize(t, "oX", ops, []int{0, 1, 1}); got != "okrs'X" {
			t.Errorf("got %q, want \"okrs'X\"", got)
		}
	}
	// Unknown stamps (0: ops the server made, older clients) fall back to
	// arrival order.
	plain := Op{}.Retain(2).Insert("rs")
	if got := serialize(t, "oX", []Op{k, quote, plain}, []int{0, 1, 1}); got != "ok'rsX" {
		t.Errorf("unstamped: got %q, want \"ok'rsX\"", got)
	}
}

// TestHeldKeystrokeGoesFirst: A's "b", typed while A's "z" was in flight,
// waits in A's buffer; B types "c" at the same spot having seen the same
// revisions. Whichever reaches the server first, "b" goes first: it was
// held back, so arrival order says nothing about which was typed first,
// and the one that waited was typed while its author was already typing.
func TestHeldKeystrokeGoesFirst(t *testing.T) {
	z := Op{}.Retain(2).insertC(stamped("z", 0))
	c := Op{}.Retain(1).insertC(stamped("c", 0))
	held := stamped("b", 0)
	held.Held = true
	b := Op{}.Retain(1).insertC(held)
	for _, tc := range []struct {
		ops   []Op
		bases []int
	}{{[]Op{z, c, b}, []int{0, 0, 1}}, {[]Op{z, b, c}, []int{0, 1, 0}}} {
		if got := serialize(t, "XY", tc.ops, tc.bases); got != "XbcYz" {
			t.Errorf("bases %v: got %q, want \"XbcYz\"", tc.bases, got)
		}
	}
}

// TestContextBytes: ContextBytes is exactly what the context adds to an
// insert's wire form, and never more than MaxContextBytes, so the
// service's op size limit bounds what a client's context makes it store.
func TestContextBytes(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	limits := []int64{0, 1, 9, 10, MaxContext}
	for i := 0; i < 2000; i++ {
		c := Component{Kind: Insert, N: 1, Text: "x", After: int32(limits[r.Intn(5)]), Gone: int32(limits[r.Intn(5)]), Seen: []int64{0, 1, 99, MaxSeen}[r.Intn(4)], Held: r.Intn(2) == 0}
		plain := len(Op{}.Insert("x").AppendJSON(nil))
		if got, want := c.ContextBytes(), len(Op{c}.AppendJSON(nil))-plain; got != want || got > MaxContextBytes {
			t.Fatalf("%+v: ContextBytes %d, wire adds %d", c, got, want)
		}
	}
}
