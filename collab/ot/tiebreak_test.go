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
	for _, bad := range []string{`[{"i":""}]`, `[{"i":"x","a":-1}]`, `[{"i":"x","g":1.5}]`, `[{"i":"x","b":1}]`,
		`[{"i":5}]`, `[{"i":"x","d":1}]`, `[{"i":"\ud800"}]`, `[{"i":"x","a":99999999999}]`} {
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
			op[i].After, op[i].Gone = int32(r.Intn(3)), int32(r.Intn(3))
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
				a[i].After, a[i].Gone = int32(ctx%3), int32(ctx/3%3)
			}
		}
		for i := range b {
			if b[i].Kind == Insert {
				b[i].After, b[i].Gone = int32(ctx/9%3), int32(ctx/27%3)
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
