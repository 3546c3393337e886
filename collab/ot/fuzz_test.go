package ot

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// Fuzz targets. Seeds are added here and in testdata/fuzz/<Target>/;
// run one with e.g. `go test -run=^$ -fuzz=FuzzTransform -fuzztime=30s ./collab/ot`.

// FuzzUnmarshal: Parse either rejects with ErrInvalidOp or returns a valid,
// canonical op that survives a round trip through its wire form.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`[]`, `[5,"abc",{"d":3}]`, `["😀"]`, `[0]`, `[{"d":1},"x"]`, `["\ud83d\ude00"]`, `[1,1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidOp) {
				t.Fatalf("error does not wrap ErrInvalidOp: %v", err)
			}
			return
		}
		if err := op.Validate(); err != nil {
			t.Fatalf("parsed op invalid: %v", err)
		}
		b, err := op.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b)
		if err != nil || !back.Equal(op) || len(back) != len(op) {
			t.Fatalf("round trip %s -> %v, %v", b, back, err)
		}
	})
}

// FuzzApply: Apply and Doc.Apply agree, never panic, reject ops that do not
// fit, and the inverse restores the original text.
func FuzzApply(f *testing.F) {
	f.Add("hello", []byte(`[2,"😀",{"d":1}]`))
	f.Add("😀中", []byte(`[{"d":2}]`))
	f.Add("", []byte(`[1]`))
	f.Fuzz(func(t *testing.T, doc string, opJSON []byte) {
		if !utf8.ValidString(doc) {
			return
		}
		op, err := Parse(opJSON)
		if err != nil {
			return
		}
		got, err := Apply(doc, op)
		d := NewDoc(doc)
		inv, derr := d.Apply(op)
		if (err == nil) != (derr == nil) {
			t.Fatalf("Apply err %v, Doc.Apply err %v", err, derr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidOp) || d.String() != doc {
				t.Fatalf("rejection: %v, doc now %q", err, d.String())
			}
			return
		}
		if d.String() != got {
			t.Fatalf("Doc %q != Apply %q", d.String(), got)
		}
		if back, err := Apply(got, inv); err != nil || back != doc {
			t.Fatalf("inverse gives %q, %v", back, err)
		}
	})
}

// fuzzOps turns arbitrary bytes into a document and ops that fit it, so
// the fuzzer explores op shapes rather than JSON syntax.
func fuzzOp(data []byte, docLen int) (Op, []byte) {
	var op Op
	left := docLen
	for len(data) >= 2 {
		k, n := data[0]%4, int(data[1]%7)+1
		data = data[2:]
		switch k {
		case 0:
			op = op.Insert(string(alphabet[n%len(alphabet)]) + "x")
		case 1:
			n = min(n, left)
			op = op.Delete(n)
			left -= n
		case 2:
			n = min(n, left)
			op = op.Retain(n)
			left -= n
		case 3:
			return op.Normalize(), data
		}
	}
	return op.Normalize(), data
}

func fuzzDoc(n uint8) string {
	rs := make([]rune, n%40)
	for i := range rs {
		rs[i] = alphabet[i%len(alphabet)]
	}
	return string(rs)
}

// FuzzTransform: concurrent ops converge in both orders.
func FuzzTransform(f *testing.F) {
	f.Add(uint8(10), []byte{0, 1, 2, 3, 3, 0, 1, 2, 0, 0})
	f.Add(uint8(3), []byte{1, 3, 3, 0, 2, 1, 0, 5})
	f.Fuzz(func(t *testing.T, n uint8, data []byte) {
		s := fuzzDoc(n)
		a, rest := fuzzOp(data, runeLen(s))
		b, _ := fuzzOp(rest, runeLen(s))
		a2, b2 := TransformPair(a, b, Left)
		x := mustApply(t, mustApply(t, s, a), b2)
		y := mustApply(t, mustApply(t, s, b), a2)
		if x != y {
			t.Fatalf("diverged: s=%q a=%v b=%v: %q != %q", s, a, b, x, y)
		}
	})
}

// FuzzCompose: compose has the effect of applying both ops in turn.
func FuzzCompose(f *testing.F) {
	f.Add(uint8(10), []byte{0, 1, 2, 3, 3, 0, 1, 2, 0, 0})
	f.Add(uint8(0), []byte{0, 0, 3, 1, 1})
	f.Fuzz(func(t *testing.T, n uint8, data []byte) {
		s := fuzzDoc(n)
		a, rest := fuzzOp(data, runeLen(s))
		mid := mustApply(t, s, a)
		b, _ := fuzzOp(rest, runeLen(mid))
		if x, y := mustApply(t, mid, b), mustApply(t, s, Compose(a, b)); x != y {
			t.Fatalf("compose: s=%q a=%v b=%v: %q != %q", s, a, b, x, y)
		}
	})
}
