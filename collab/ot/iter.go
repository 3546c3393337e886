package ot

import (
	"math"
	"unicode/utf8"
)

// iter walks an op component by component, handing out pieces of a given
// length. Past the end it yields an endless implicit retain, which is what a
// dropped trailing retain means.
type iter struct {
	op   Op
	i    int // current component
	off  int // code points of op[i] already taken
	offB int // bytes of op[i].Text already taken (inserts only)
}

func (it *iter) done() bool { return it.i >= len(it.op) }

// peek returns the current component whole (the zero Component past the end).
func (it *iter) peek() Component {
	if it.done() {
		return Component{}
	}
	return it.op[it.i]
}

func (it *iter) kind() Kind {
	if it.done() {
		return Retain
	}
	return it.op[it.i].Kind
}

// remaining is the untaken length of the current component.
func (it *iter) remaining() int {
	if it.done() {
		return math.MaxInt
	}
	return it.op[it.i].N - it.off
}

// take removes and returns up to n code points of the current component
// (n < 0: all that is left of it).
func (it *iter) take(n int) Component {
	if it.done() {
		return Component{Kind: Retain, N: n}
	}
	c := it.op[it.i]
	left := c.N - it.off
	// Only the first piece of an insert keeps its tie-break context; the
	// rest of the run was typed after its own first character.
	if n < 0 || n >= left {
		out := Component{Kind: c.Kind, N: left}
		if c.Kind == Insert {
			out.Text = c.Text[it.offB:]
			if it.off == 0 {
				out.After, out.Gone, out.Seen, out.Held = c.After, c.Gone, c.Seen, c.Held
			}
		}
		it.i++
		it.off, it.offB = 0, 0
		return out
	}
	out := Component{Kind: c.Kind, N: n}
	if c.Kind == Insert {
		if it.off == 0 {
			out.After, out.Gone, out.Seen, out.Held = c.After, c.Gone, c.Seen, c.Held
		}
		end := it.offB
		for k := 0; k < n; k++ {
			_, size := utf8.DecodeRuneInString(c.Text[end:])
			end += size
		}
		out.Text = c.Text[it.offB:end]
		it.offB = end
	}
	it.off += n
	return out
}
