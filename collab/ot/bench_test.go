package ot

import (
	"math/rand"
	"strings"
	"testing"
)

// bigText is about 1 MB of mixed-width text.
func bigText() string {
	var b strings.Builder
	line := "The quick brown fox — über 中文 😀 jumps over the lazy dog.\n"
	for b.Len() < 1<<20 {
		b.WriteString(line)
	}
	return b.String()
}

// BenchmarkApplyString: one keystroke in the middle of a 1 MB string costs
// a full copy.
func BenchmarkApplyString(b *testing.B) {
	s := bigText()
	n := runeLen(s)
	op := Op{}.Retain(n / 2).Insert("x")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Apply(s, op); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDocApplyLocal: keystrokes near each other in a 1 MB Doc, the
// pattern of real typing.
func BenchmarkDocApplyLocal(b *testing.B) {
	d := NewDoc(bigText())
	pos := d.Len() / 2
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var op Op
		if i%5 == 4 {
			op = Op{}.Retain(pos - 1).Delete(1)
			pos--
		} else {
			op = Op{}.Retain(pos).Insert("é")
			pos++
		}
		if _, err := d.Apply(op); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDocApplyRandom: edits at random places in a 1 MB Doc, the worst
// case for a gap buffer.
func BenchmarkDocApplyRandom(b *testing.B) {
	d := NewDoc(bigText())
	r := rand.New(rand.NewSource(1))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.Apply(Op{}.Retain(r.Intn(d.Len())).Insert("x")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTransform(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	s := randText(r, 200)
	x, y := randOp(r, runeLen(s)), randOp(r, runeLen(s))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Transform(x, y, Left)
	}
}

func BenchmarkCompose(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	s := randText(r, 200)
	x := randOp(r, runeLen(s))
	y := randOp(r, runeLen(mustApply(b, s, x)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Compose(x, y)
	}
}
