package ot

import "unicode/utf8"

// Doc is a mutable text document for applying many ops: the document
// service keeps one per open document.
//
// It is a gap buffer of code points. An op costs O(distance the gap moves +
// size of the change) instead of O(document) for Apply on a string: real
// editing is local (a person types where they typed last), so replaying the
// 260k-keystroke automerge-paper trace moves the gap only a few code points
// per op. Text() is O(n) and is only needed for snapshots. A Doc is not safe
// for concurrent use; the service owns each one from a single goroutine.
type Doc struct {
	buf      []rune
	gapStart int // buf[gapStart:gapEnd] is the unused gap
	gapEnd   int
	// slab is where Apply builds inverses: one allocation for many ops
	// instead of one or two per op (the service applies one op per
	// keystroke and keeps every inverse in its log).
	slab []Component
}

// slabSize is how many inverse components one slab holds. A slab stays
// alive while any inverse cut from it does: 512 components are 24 KiB,
// small next to the log of ops that holds those inverses.
const slabSize = 512

// NewDoc returns a Doc holding text (which should be valid UTF-8; invalid
// bytes become U+FFFD as in any Go []rune conversion).
func NewDoc(text string) *Doc {
	rs := []rune(text)
	gap := len(rs)/8 + 64
	buf := make([]rune, len(rs)+gap)
	copy(buf, rs)
	return &Doc{buf: buf, gapStart: len(rs), gapEnd: len(buf)}
}

// Len is the document length in code points.
func (d *Doc) Len() int { return len(d.buf) - (d.gapEnd - d.gapStart) }

// String returns the whole text.
func (d *Doc) String() string {
	b := make([]byte, 0, d.Len()+d.Len()/4)
	b = appendRunes(b, d.buf[:d.gapStart])
	b = appendRunes(b, d.buf[d.gapEnd:])
	return string(b)
}

// appendRunes appends rs as UTF-8, ASCII without a call per rune (the
// service encodes the whole text for every snapshot).
func appendRunes(b []byte, rs []rune) []byte {
	for _, r := range rs {
		if r < utf8.RuneSelf {
			b = append(b, byte(r))
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// Slice returns n code points starting at pos (clamped to the document).
func (d *Doc) Slice(pos, n int) string {
	var b []byte
	end := min(pos+n, d.Len())
	for i := max(pos, 0); i < end; i++ {
		b = utf8.AppendRune(b, d.at(i))
	}
	return string(b)
}

func (d *Doc) at(i int) rune {
	if i < d.gapStart {
		return d.buf[i]
	}
	return d.buf[i+d.gapEnd-d.gapStart]
}

// moveGap puts the gap at code point position pos.
func (d *Doc) moveGap(pos int) {
	switch {
	case pos < d.gapStart:
		n := d.gapStart - pos
		copy(d.buf[d.gapEnd-n:d.gapEnd], d.buf[pos:d.gapStart])
		d.gapStart -= n
		d.gapEnd -= n
	case pos > d.gapStart:
		n := pos - d.gapStart
		copy(d.buf[d.gapStart:d.gapStart+n], d.buf[d.gapEnd:d.gapEnd+n])
		d.gapStart += n
		d.gapEnd += n
	}
}

// grow makes the gap at least need code points wide.
func (d *Doc) grow(need int) {
	if d.gapEnd-d.gapStart >= need {
		return
	}
	size := len(d.buf) + need + len(d.buf)/2 + 64
	buf := make([]rune, size)
	copy(buf, d.buf[:d.gapStart])
	tail := len(d.buf) - d.gapEnd
	copy(buf[size-tail:], d.buf[d.gapEnd:])
	d.gapEnd = size - tail
	d.buf = buf
}

// Apply applies op and returns its inverse (the op that undoes it on the
// resulting text). An op that is malformed or does not fit is rejected with
// ErrInvalidOp and the document is left unchanged.
func (d *Doc) Apply(op Op) (inverse Op, err error) {
	if err := op.checkFits(d.Len()); err != nil {
		return nil, err
	}
	if len(op) == 0 {
		return nil, nil
	}
	// An op's inverse has at most as many components as the op (each maps
	// to one, and merging only removes), so it fits in len(op) slots of
	// the slab. Its capacity ends where it ends, so that appending to it
	// copies instead of writing into the next inverse's slots.
	if cap(d.slab)-len(d.slab) < len(op) {
		d.slab = make([]Component, 0, max(slabSize, len(op)))
	}
	n := len(d.slab)
	inverse = d.slab[n : n : n+len(op)]
	pos := 0
	for _, c := range op {
		switch c.Kind {
		case Retain:
			pos += c.N
			inverse = inverse.retain(c.N)
		case Insert:
			d.moveGap(pos)
			d.grow(c.N)
			for _, r := range c.Text {
				d.buf[d.gapStart] = r
				d.gapStart++
			}
			pos += c.N
			inverse = inverse.del(c.N)
		case Delete:
			d.moveGap(pos)
			deleted := d.buf[d.gapEnd : d.gapEnd+c.N]
			inverse = inverse.insertN(string(deleted), c.N)
			d.gapEnd += c.N
		}
	}
	if len(inverse) <= len(op) { // always, but never hand out slots past it
		d.slab = d.slab[:n+len(inverse)]
		inverse = inverse[:len(inverse):len(inverse)]
	}
	return inverse.trim(), nil
}
