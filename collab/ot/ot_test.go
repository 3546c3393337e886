package ot

import (
	"encoding/json"
	"errors"
	"math/rand"
	"strings"
	"testing"
)

func TestApplyBasics(t *testing.T) {
	cases := []struct {
		doc  string
		op   Op
		want string
	}{
		{"", Op{}.Insert("héllo"), "héllo"},
		{"hello", Op{}.Retain(5).Insert(" world"), "hello world"},
		{"h😀llo", Op{}.Retain(1).Delete(1).Insert("e"), "hello"},
		{"a😀b", Op{}.Retain(2).Insert("🎉"), "a😀🎉b"},
		{"中文字", Op{}.Delete(1).Retain(1).Delete(1), "文"},
		{"abc", nil, "abc"},
	}
	for _, c := range cases {
		got, err := Apply(c.doc, c.op)
		if err != nil || got != c.want {
			t.Errorf("Apply(%q, %v) = %q, %v; want %q", c.doc, c.op, got, err, c.want)
		}
		d := NewDoc(c.doc)
		if _, err := d.Apply(c.op); err != nil || d.String() != c.want {
			t.Errorf("Doc.Apply(%q, %v) = %q, %v; want %q", c.doc, c.op, d.String(), err, c.want)
		}
	}
}

func TestBuilderDoesNotAlias(t *testing.T) {
	base := Op{}.Retain(3)
	a := base.Insert("x")
	b := base.Retain(2)
	if !base.Equal(Op{}.Retain(3)) || a.String() != `[3,"x"]` || b.String() != `[5]` {
		t.Fatalf("builders alias: base=%v a=%v b=%v", base, a, b)
	}
}

func TestCanonicalForm(t *testing.T) {
	op := Op{}.Retain(2).Retain(1).Delete(2).Insert("ab").Insert("c").Delete(1).Retain(4)
	if got := op.Normalize().String(); got != `[3,"abc",{"d":3}]` {
		t.Fatalf("normalised = %s", got)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	op := Op{}.Retain(5).Insert("a\"😀\n").Delete(3)
	b, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `[5,"a\"😀\n",{"d":3}]` {
		t.Fatalf("wire form %s", b)
	}
	var back Op
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(op) {
		t.Fatalf("round trip: %v %v", back, err)
	}
	// Non-canonical but valid input is normalised.
	if err := json.Unmarshal([]byte(`[1, 2, "a", "b", {"d":1}, 7]`), &back); err != nil || back.String() != `[3,"ab",{"d":1}]` {
		t.Fatalf("normalise on decode: %v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`[]`), &back); err != nil || len(back) != 0 {
		t.Fatalf("empty op: %v %v", back, err)
	}
	// A surrogate pair escape is a valid astral code point.
	if err := json.Unmarshal([]byte(`["\ud83d\ude00"]`), &back); err != nil || back[0].Text != "😀" || back[0].N != 1 {
		t.Fatalf("surrogate pair: %v %v", back, err)
	}
}

func TestRejectInvalid(t *testing.T) {
	bad := []string{
		`null`, `{}`, `5`, `"abc"`, `[0]`, `[-3]`, `[1.5]`, `[1e3]`, `[""]`,
		`[{"d":0}]`, `[{"d":-1}]`, `[{"d":"3"}]`, `[{"x":1}]`, `[{"d":1,"x":2}]`,
		`[null]`, `[true]`, `[[1]]`, `[1,`, "[\"\xff\xfe\"]", `["\ud800"]`, `["\udc00x"]`,
		`["a\ud83dz"]`, `[99999999999999999999999]`,
	}
	for _, s := range bad {
		// Parse is what the service calls on wire bytes. (json.Unmarshal
		// reports syntax errors itself before UnmarshalJSON runs.)
		op, err := Parse([]byte(s))
		if !errors.Is(err, ErrInvalidOp) {
			t.Errorf("Parse(%q) = %v, %v; want ErrInvalidOp", s, op, err)
		}
		if json.Valid([]byte(s)) {
			if err := json.Unmarshal([]byte(s), &op); !errors.Is(err, ErrInvalidOp) {
				t.Errorf("Unmarshal(%q) = %v; want ErrInvalidOp", s, err)
			}
		}
	}
	// Programmatically built ops are validated by Apply too.
	invalid := []Op{
		{{Kind: Retain, N: 0}},
		{{Kind: Delete, N: -1}},
		{{Kind: Insert, N: 0, Text: ""}},
		{{Kind: Insert, N: 2, Text: "\xff\xfe"}},
		{{Kind: Insert, N: 5, Text: "ab"}},
		{{Kind: 9, N: 1}},
	}
	for _, op := range invalid {
		if _, err := Apply("hello", op); !errors.Is(err, ErrInvalidOp) {
			t.Errorf("Apply(%#v) err = %v; want ErrInvalidOp", op, err)
		}
		d := NewDoc("hello")
		if _, err := d.Apply(op); !errors.Is(err, ErrInvalidOp) || d.String() != "hello" {
			t.Errorf("Doc.Apply(%#v) err = %v, doc %q", op, err, d.String())
		}
		if _, err := op.MarshalJSON(); !errors.Is(err, ErrInvalidOp) {
			t.Errorf("MarshalJSON(%#v) err = %v", op, err)
		}
	}
	// Ops that do not fit the document: retain or delete past the end,
	// counted in code points (the emoji doc is 3 code points, 12 bytes).
	for _, op := range []Op{Op{}.Retain(4), Op{}.Delete(4), Op{}.Retain(3).Delete(1), Op{}.Retain(2).Insert("x").Delete(2)} {
		doc := "😀😀😀"
		if _, err := Apply(doc, op); !errors.Is(err, ErrInvalidOp) || !strings.Contains(err.Error(), "document has 3") {
			t.Errorf("Apply(%v) past end: %v", op, err)
		}
		d := NewDoc(doc)
		if _, err := d.Apply(op); !errors.Is(err, ErrInvalidOp) || d.String() != doc {
			t.Errorf("Doc.Apply(%v) past end: %v, doc %q", op, err, d.String())
		}
		if _, err := Invert(op, doc); !errors.Is(err, ErrInvalidOp) {
			t.Errorf("Invert(%v) past end: %v", op, err)
		}
	}
}

// TestConvergence: for concurrent a, b on s, both orders of application
// give the same text (TP1), for many random pairs.
func TestConvergence(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		s := randText(r, 20)
		a, b := randOp(r, runeLen(s)), randOp(r, runeLen(s))
		a2, b2 := TransformPair(a, b, Left)
		x := mustApply(t, mustApply(t, s, a), b2)
		y := mustApply(t, mustApply(t, s, b), a2)
		if x != y {
			t.Fatalf("diverged on %q\na=%v b=%v\na'=%v b'=%v\n%q != %q", s, a, b, a2, b2, x, y)
		}
	}
}

// TestTieBreak: concurrent inserts at one position are ordered by side,
// the same way on every replica.
func TestTieBreak(t *testing.T) {
	s := "ab"
	logged := Op{}.Retain(1).Insert("X")
	incoming := Op{}.Retain(1).Insert("Y")
	got := mustApply(t, mustApply(t, s, logged), Transform(incoming, logged, Right))
	if got != "aXYb" {
		t.Fatalf("logged op must win left: %q", got)
	}
}

func TestComposeEquivalence(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 20000; i++ {
		s := randText(r, 20)
		a := randOp(r, runeLen(s))
		mid := mustApply(t, s, a)
		b := randOp(r, runeLen(mid))
		c := Compose(a, b)
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if x, y := mustApply(t, mid, b), mustApply(t, s, c); x != y {
			t.Fatalf("compose mismatch on %q a=%v b=%v c=%v: %q != %q", s, a, b, c, x, y)
		}
		if !c.Equal(c.Normalize()) {
			t.Fatalf("compose result not canonical: %v", c)
		}
	}
}

func TestInvertRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for i := 0; i < 20000; i++ {
		s := randText(r, 20)
		op := randOp(r, runeLen(s))
		inv, err := Invert(op, s)
		if err != nil {
			t.Fatal(err)
		}
		after := mustApply(t, s, op)
		if back := mustApply(t, after, inv); back != s {
			t.Fatalf("invert: %q -%v-> %q -%v-> %q", s, op, after, inv, back)
		}
		d := NewDoc(s)
		inv2, err := d.Apply(op)
		if err != nil || d.String() != after || !inv2.Equal(inv) {
			t.Fatalf("Doc.Apply: %q %v, inverse %v vs %v", d.String(), err, inv2, inv)
		}
		if _, err := d.Apply(inv2); err != nil || d.String() != s {
			t.Fatalf("Doc inverse: %q %v", d.String(), err)
		}
	}
}

func TestDiff(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for i := 0; i < 20000; i++ {
		a, b := randText(r, 12), randText(r, 12)
		if i%3 == 0 {
			b = a[:len(a)/2] + b // shared prefix, possibly cut mid-rune
		}
		op := Diff(a, b)
		if err := op.Validate(); err != nil {
			if !strings.ContainsRune(b, '\uFFFD') {
				t.Fatalf("diff invalid: %v", err)
			}
			continue
		}
		if got, err := Apply(a, op); err == nil && got != b && strings.ToValidUTF8(b, "\uFFFD") == b {
			t.Fatalf("Diff(%q,%q)=%v gives %q", a, b, op, got)
		}
	}
	if got := Diff("hello world", "hello brave world").String(); got != `[6,"brave "]` {
		t.Fatalf("diff = %s", got)
	}
}

func TestTransformPosition(t *testing.T) {
	op := Op{}.Retain(2).Insert("XY").Delete(1) // "abcd" -> "abXYd"
	cases := []struct {
		pos  int
		own  bool
		want int
	}{
		{0, false, 0}, {1, false, 1}, {2, false, 2}, {2, true, 4},
		{3, false, 4}, {4, false, 5}, {3, true, 4},
	}
	for _, c := range cases {
		if got := TransformPosition(c.pos, op, c.own); got != c.want {
			t.Errorf("TransformPosition(%d, own=%v) = %d, want %d", c.pos, c.own, got, c.want)
		}
	}
	sel := TransformSelection(Selection{Anchor: 0, Head: 4}, op, false)
	if sel != (Selection{Anchor: 0, Head: 5}) {
		t.Errorf("selection = %+v", sel)
	}
}

// TestCursorConsistency: a cursor moved through an op stays on the same
// character, and an own insert at the cursor leaves it after the insert.
func TestCursorConsistency(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	for i := 0; i < 20000; i++ {
		s := randText(r, 20)
		n := runeLen(s)
		op := randOp(r, n)
		after := mustApply(t, s, op)
		pos := r.Intn(n + 1)
		np := TransformPosition(pos, op, false)
		if np < 0 || np > runeLen(after) {
			t.Fatalf("position %d -> %d out of range for %q", pos, np, after)
		}
		// Mark the character at pos with a sentinel op composed through:
		// if that character survives op, the moved cursor is in front of it.
		if pos < n {
			rs := []rune(s)
			marked := string(rs[:pos]) + "\x00" + string(rs[pos+1:])
			if m2, err := Apply(marked, op); err == nil && strings.ContainsRune(m2, 0) {
				// The owner's cursor ends right before the character (after
				// anything it inserted there); anyone else's may stay in
				// front of text inserted at the cursor.
				idx := runeIndex([]rune(m2), 0)
				if own := TransformPosition(pos, op, true); own != idx || np > idx {
					t.Fatalf("cursor on %q at %d moved to %d/%d (own), char now at %d (op %v)", s, pos, np, own, idx, op)
				}
			}
		}
		// Own insert at the cursor pushes it past the insert.
		ins := Op{}.Retain(pos).Insert("🎉z")
		if got := TransformPosition(pos, ins, true); got != pos+2 {
			t.Fatalf("own insert: %d -> %d", pos, got)
		}
		if got := TransformPosition(pos, ins, false); got != pos {
			t.Fatalf("other's insert: %d -> %d", pos, got)
		}
	}
}

func runeIndex(rs []rune, r rune) int {
	for i, x := range rs {
		if x == r {
			return i
		}
	}
	return -1
}
