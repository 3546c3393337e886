package ot

// Side breaks the tie when two concurrent ops insert at the same position.
type Side uint8

const (
	// Left: the op being transformed wins, its insert goes first. The
	// server gives Left to the op already in its log.
	Left Side = iota
	// Right: the other op's insert goes first. The server transforms an
	// incoming op with Right over each logged op it missed.
	Right
)

// Transform returns a', the version of a that has the same intent when
// applied after b, where a and b were both made against the same document.
// For a pair (a, b) the results
//
//	a' = Transform(a, b, Left), b' = Transform(b, a, Right)
//
// converge: Apply(Apply(s, b), a') == Apply(Apply(s, a), b').
// If b deletes text that a also deleted or retained over, a' skips it; text
// that a inserts inside a region b deletes survives.
func Transform(a, b Op, side Side) Op {
	var out Op
	ia, ib := iter{op: a}, iter{op: b}
	for !ia.done() {
		switch {
		case ia.kind() == Insert && (side == Left || ib.kind() != Insert):
			out = out.push(ia.take(-1))
		case ib.kind() == Insert:
			out = out.retain(ib.take(-1).N)
		default:
			n := min(ia.remaining(), ib.remaining())
			ca, cb := ia.take(n), ib.take(n)
			if cb.Kind == Delete {
				continue // b already removed this text
			}
			out = out.push(ca) // retain or delete over text b kept
		}
	}
	return out.trim()
}

// TransformPair returns (a', b') for concurrent a and b, with a on the given
// side: a' applies after b, b' applies after a, and both orders converge.
func TransformPair(a, b Op, sideA Side) (Op, Op) {
	sideB := Right
	if sideA == Right {
		sideB = Left
	}
	return Transform(a, b, sideA), Transform(b, a, sideB)
}
