package collab

import (
	"fmt"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// Size limits. A client can make the server hold a document, so both its
// size and the size of one op are bounded (Config.MaxDocBytes and
// MaxOpBytes); an op over either is refused with ErrTooLarge before
// anything is applied. The limits never lock anyone out: an op that does
// not make the document bigger is always accepted, so a document left over
// a lowered limit can still be cut down.

// opBytes is what one op costs to hold: the UTF-8 bytes of its inserted
// text plus 8 per component (about its wire size), plus the wire size of
// each insert's tie-break context (up to ot.MaxContextBytes; a client chooses it, so
// it counts against the same limit as the text).
func opBytes(op ot.Op) int {
	n := 8 * len(op)
	for _, c := range op {
		n += len(c.Text) + c.ContextBytes()
	}
	return n
}

// insertedBytes is the UTF-8 size of the text op inserts.
func insertedBytes(op ot.Op) int {
	n := 0
	for _, c := range op {
		n += len(c.Text)
	}
	return n
}

// checkOpSize refuses an op bigger than MaxOpBytes.
func (d *document) checkOpSize(op ot.Op) error {
	if n, max := opBytes(op), d.svc.cfg.MaxOpBytes; n > max {
		return fmt.Errorf("%w: op of %d bytes, the limit is %d", ErrTooLarge, n, max)
	}
	return nil
}

// checkDocSize refuses op (against the current text) if it would leave the
// document bigger than MaxDocBytes and bigger than it is now. The deleted
// text is measured only when the inserted text alone could cross the limit.
func (d *document) checkDocSize(op ot.Op) error {
	max, ins := d.svc.cfg.MaxDocBytes, insertedBytes(op)
	if d.bytes+ins <= max || ins == 0 {
		return nil
	}
	del, pos := 0, 0
	for _, c := range op {
		switch c.Kind {
		case ot.Retain:
			pos += c.N
		case ot.Delete:
			del += len(d.text.Slice(pos, c.N))
			pos += c.N
		}
	}
	if after := d.bytes + ins - del; after > max && after > d.bytes {
		return fmt.Errorf("%w: the document would be %d bytes, the limit is %d", ErrTooLarge, after, max)
	}
	return nil
}
