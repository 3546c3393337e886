package ot

import "unicode/utf8"

// Invert returns the op that undoes op on the text it produced from
// docBefore: Apply(Apply(docBefore, op), Invert(op, docBefore)) ==
// docBefore. The inverse needs docBefore because a delete does not carry the
// text it removes. It fails (ErrInvalidOp) if op does not fit docBefore.
// Doc.Apply returns the inverse directly, without this second walk.
func Invert(op Op, docBefore string) (Op, error) {
	if err := op.checkFits(utf8.RuneCountInString(docBefore)); err != nil {
		return nil, err
	}
	var inv Op
	rest := docBefore
	for _, c := range op {
		switch c.Kind {
		case Retain:
			rest = rest[byteLen(rest, c.N):]
			inv = inv.retain(c.N)
		case Insert:
			inv = inv.del(c.N)
		case Delete:
			n := byteLen(rest, c.N)
			inv = inv.insertN(rest[:n], c.N)
			rest = rest[n:]
		}
	}
	return inv.trim(), nil
}
