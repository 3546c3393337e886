package ot

import (
	"strings"
	"unicode/utf8"
)

// Apply returns doc with op applied. It rejects (with ErrInvalidOp, leaving
// nothing half-done) an op that is malformed or walks past the end of doc.
//
// Apply walks doc once and builds the result once, so one call costs
// O(len(doc)). Code that applies many ops to one large document should use
// Doc, whose cost per op is proportional to the distance between edits.
func Apply(doc string, op Op) (string, error) {
	if err := op.Validate(); err != nil {
		return "", err
	}
	// Fast reject before allocating: an op longer than doc in bytes is
	// certainly longer in code points.
	if b := op.BaseLen(); b > len(doc) || (b > 0 && b > utf8.RuneCountInString(doc)) {
		return "", op.checkFits(utf8.RuneCountInString(doc))
	}
	var out strings.Builder
	out.Grow(len(doc) + 16)
	rest := doc
	for _, c := range op {
		switch c.Kind {
		case Retain:
			n := byteLen(rest, c.N)
			out.WriteString(rest[:n])
			rest = rest[n:]
		case Insert:
			out.WriteString(c.Text)
		case Delete:
			rest = rest[byteLen(rest, c.N):]
		}
	}
	out.WriteString(rest)
	return out.String(), nil
}

// byteLen returns the byte length of the first n code points of s (all of s
// if it is shorter). ASCII runs are skipped a byte at a time without
// decoding.
func byteLen(s string, n int) int {
	i := 0
	for n > 0 && i < len(s) {
		if s[i] < utf8.RuneSelf {
			i++
		} else {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		n--
	}
	return i
}
