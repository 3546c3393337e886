package ot

import "unicode/utf8"

// Diff returns an op that turns from into to. It keeps the longest common
// prefix and suffix and replaces the middle, which is what restoring an old
// version needs: a small op when the texts mostly agree, that transforms
// against concurrent edits like any other op.
func Diff(from, to string) Op {
	p := 0 // common prefix in bytes, on a rune boundary
	for p < len(from) && p < len(to) {
		r1, s1 := utf8.DecodeRuneInString(from[p:])
		r2, s2 := utf8.DecodeRuneInString(to[p:])
		if r1 != r2 || s1 != s2 {
			break
		}
		p += s1
	}
	a, b := from[p:], to[p:]
	s := 0 // common suffix in bytes
	for s < len(a) && s < len(b) {
		r1, s1 := utf8.DecodeLastRuneInString(a[:len(a)-s])
		r2, s2 := utf8.DecodeLastRuneInString(b[:len(b)-s])
		if r1 != r2 || s1 != s2 {
			break
		}
		s += s1
	}
	var op Op
	op = op.retain(utf8.RuneCountInString(from[:p]))
	op = op.insert(b[:len(b)-s])
	op = op.del(utf8.RuneCountInString(a[:len(a)-s]))
	return op.trim()
}
