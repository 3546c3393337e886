package ot

import (
	"math/rand"
	"strings"
	"unicode/utf8"
)

// alphabet mixes ASCII, 2- and 3-byte code points and astral-plane emoji
// (4 bytes in UTF-8, a surrogate pair in UTF-16), so that any confusion
// of bytes, UTF-16 units and code points shows up.
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
func randOp(r *rand.Rand, docLen int) Op {
	var op Op
	left := docLen
	for left > 0 || r.Intn(3) == 0 {
		switch r.Intn(4) {
		case 0:
			op = op.Insert(randText(r, 4))
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
		if left == 0 && r.Intn(2) == 0 {
			break
		}
		if r.Intn(10) == 0 {
			break // stop early: the rest is an implicit retain
		}
	}
	return op.Normalize()
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

func mustApply(t interface{ Fatalf(string, ...any) }, s string, op Op) string {
	out, err := Apply(s, op)
	if err != nil {
		t.Fatalf("apply %v to %q: %v", op, s, err)
	}
	return out
}
