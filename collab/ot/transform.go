package ot

import "math"

// Side breaks the tie when two concurrent inserts at the same position
// carry the same tie-break context (see Transform).
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
//
// Two inserts at one position are ordered by their context (Component.Gone,
// After, Seen and Held), and only when that does not decide by side:
//
//   - the insert with less concurrently deleted text right before it goes
//     first: one typed after a character that was deleted meanwhile belongs
//     after the inserts typed before that character;
//   - then, unless both were held, the insert moved past less concurrent
//     text goes first: an insert typed right after a character (After 0)
//     belongs before one that only sits there because an earlier tie pushed
//     it past that character. This keeps a run typed in several round trips
//     together: its later keystrokes follow its own earlier ones, never the
//     other author's;
//   - then, when both are stamped, the insert typed having seen fewer
//     revisions goes first: it was typed earlier, and a person who carries
//     on from it (typing after its neighbour because its own ack or
//     broadcast has not reached them yet) means to follow it. Without this,
//     whichever op reaches the server first wins, and a keystroke held in
//     its author's buffer while the other person starts a run there lands
//     after that whole run;
//   - then the held insert goes first: of two typed having seen the same
//     revisions, the one that waited in its author's buffer reached the
//     server later than it was typed, so arrival says nothing, and its
//     author was already typing when the other started;
//   - then, for two held inserts, the one moved past less text: when both
//     authors were typing at once the stamps say more about who was first
//     than After does, so After comes after them.
//
// The insert that goes second records what it was moved past (After grows
// by the other insert's length) and a' records b's deletes right before
// each of a's inserts (Gone), so the next tie sees where it came from.
// Both orders decide the same way, so any context keeps TP1.
func Transform(a, b Op, side Side) Op {
	var out Op
	ia, ib := iter{op: a}, iter{op: b}
	// Context for a's insert at the current position: b's text it was moved
	// past at a tie (after, and the loser gives up the deleted text the
	// winner already sits behind: less), and b's deletes right before (gone).
	var after, less, gone int
	for !ia.done() {
		switch {
		case ia.kind() == Insert && (ib.kind() != Insert || insertFirst(ia.peek(), ib.peek(), side)):
			c := ia.take(-1)
			c.After = saturate(int(c.After) + after)
			c.Gone = saturate(max(0, int(c.Gone)-less) + gone)
			after, less, gone = 0, 0, 0
			out = out.push(c)
		case ib.kind() == Insert:
			cb := ib.take(-1)
			out = out.retain(cb.N)
			if ia.kind() == Insert { // a's insert lost the tie
				after += cb.N
				less = int(cb.Gone)
			}
			gone = 0
		default:
			n := min(ia.remaining(), ib.remaining())
			ca, cb := ia.take(n), ib.take(n)
			if cb.Kind == Delete {
				gone += n
				continue // b already removed this text
			}
			gone = 0
			out = out.push(ca) // retain or delete over text b kept
		}
	}
	return out.trim()
}

// MaxContext is the largest tie-break counter (Component.After, Gone) the
// wire form accepts. Transform saturates at it instead of overflowing: a
// client could otherwise send a counter near the limit and have the
// server's sum wrap negative (an op the server then refuses as invalid,
// and that Go and the page, whose numbers do not wrap, would order
// differently). Saturated counters still compare the same way on both
// sides of a pair, so convergence does not depend on the values.
const MaxContext = math.MaxInt32

func saturate(n int) int32 { return int32(min(n, MaxContext)) }

// insertFirst reports whether insert a goes before the concurrent insert b
// at the same position (see Transform).
func insertFirst(a, b Component, side Side) bool {
	if a.Gone != b.Gone {
		return a.Gone < b.Gone
	}
	bothHeld := a.Held && b.Held
	if a.After != b.After && !bothHeld {
		return a.After < b.After
	}
	if a.Seen != 0 && b.Seen != 0 {
		if a.Seen != b.Seen {
			return a.Seen < b.Seen
		}
		if a.Held != b.Held {
			return a.Held
		}
	}
	if a.After != b.After {
		return a.After < b.After
	}
	return side == Left
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
