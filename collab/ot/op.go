// Package ot implements operational transformation for plain text.
//
// An Op is a list of components that walk over a document from its start:
// retain n code points, insert a string, or delete n code points. Every
// position and count is in Unicode code points (never bytes or UTF-16
// units), which is what the Huddle protocol uses on the wire.
//
// Ops are kept in a canonical (normalised) form so that equal effects give
// equal values: adjacent components of one kind are merged, zero-length parts
// are dropped, an insert is always placed before an adjacent delete, and a
// trailing retain is dropped (the rest of the document is retained
// implicitly, as in ShareDB's text type).
package ot

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrInvalidOp is wrapped by every error that rejects an op: malformed
// components, invalid UTF-8, or an op that does not fit the document it is
// applied to. Callers map it to a protocol error code with errors.Is.
var ErrInvalidOp = errors.New("invalid op")

// Kind says what a Component does.
type Kind uint8

// The three component kinds.
const (
	Retain Kind = iota + 1
	Insert
	Delete
)

func (k Kind) String() string {
	switch k {
	case Retain:
		return "retain"
	case Insert:
		return "insert"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Component is one step of an Op. N is the length in code points for every
// kind (for Insert it is the code point count of Text, cached so transform
// and compose never recount).
//
// After and Gone are an insert's tie-break context (see Transform): zero for
// an insert as its author typed it, raised by Transform as the insert is
// rebased over concurrent ops. They travel with the op (wire form
// {"i": text, "a": After, "g": Gone, "s": Seen, "h": 1 if Held}) so that
// every replica breaks a tie the same way.
type Component struct {
	Kind Kind
	N    int
	Text string // only for Insert
	// After counts the code points of concurrent inserts this insert was
	// moved past at its own position: the character its author typed it
	// after is that much further left.
	After int32
	// Gone counts the code points deleted concurrently right before this
	// insert, between it and the nearest character still there.
	Gone int32
	// Seen is how many revisions of the document its author had seen when
	// typing it (revision r seen: r+1), stamped by the client and never
	// changed by Transform; 0 means not known (ops made by the server or
	// by an older client), and then ties fall to side. It orders two
	// inserts by when they were typed, not when they reached the server.
	Seen int64
	// Held says its author typed it while an earlier edit of theirs was
	// still unacknowledged (stamped by the client, never changed by
	// Transform): it waited in the author's buffer, so it reached the
	// server later than it was typed.
	Held bool
}

// MaxSeen is the largest Seen the wire form accepts: the largest integer a
// JavaScript number holds exactly, so that the page compares stamps as Go
// does.
const MaxSeen = 1<<53 - 1

// hasContext reports whether c carries tie-break context.
func (c Component) hasContext() bool { return c.After != 0 || c.Gone != 0 || c.Seen != 0 || c.Held }

// ContextBytes is how many bytes c's tie-break context adds to its wire
// form ({"i": s, "a": n, "g": m, "s": seen, "h": 1} instead of the string
// s): what a client's context makes the server store beyond the text, at
// most MaxContextBytes an insert. The service counts it in
// an op's size limit.
func (c Component) ContextBytes() int {
	if c.Kind != Insert || !c.hasContext() {
		return 0
	}
	n := len(`{"i":}`)
	for _, v := range [...]int64{int64(c.After), int64(c.Gone), c.Seen} {
		if v != 0 {
			n += len(`,"a":`) + digits(v)
		}
	}
	if c.Held {
		n += len(`,"h":1`)
	}
	return n
}

// MaxContextBytes is the most ContextBytes returns: every counter at its
// limit and Held set.
const MaxContextBytes = 63

func digits(v int64) int {
	n := 1
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}

// Op is a text operation. The zero value (nil) is the identity (no-op).
// Build ops with the chainable methods, which keep them canonical:
//
//	op := ot.Op{}.Retain(5).Insert("héllo").Delete(3)
type Op []Component

// Retain returns o followed by "keep the next n code points"; n <= 0 adds
// nothing. Like the other builder methods it never changes o itself (the
// result does not share o's backing array), so a common prefix can be reused.
func (o Op) Retain(n int) Op { return o.own().retain(n) }

// Delete returns o followed by "remove the next n code points"; n <= 0 adds
// nothing.
func (o Op) Delete(n int) Op { return o.own().del(n) }

// Insert returns o followed by an insertion of s; "" adds nothing. s must
// be valid UTF-8 (Validate reports it otherwise). An insert right after a
// delete is placed before it: both orders have the same effect, and one
// canonical order makes equal ops compare equal.
func (o Op) Insert(s string) Op { return o.own().insert(s) }

// own copies o so that the in-place builders below may merge into its last
// component without touching a slice the caller still holds.
func (o Op) own() Op {
	out := make(Op, len(o), len(o)+2)
	copy(out, o)
	return out
}

// The lower-case builders append in place (merging into the last component);
// they are used on ops that this package is constructing.
func (o Op) retain(n int) Op {
	if n <= 0 {
		return o
	}
	if l := len(o); l > 0 && o[l-1].Kind == Retain {
		o[l-1].N += n
		return o
	}
	return append(o, Component{Kind: Retain, N: n})
}

func (o Op) del(n int) Op {
	if n <= 0 {
		return o
	}
	if l := len(o); l > 0 && o[l-1].Kind == Delete {
		o[l-1].N += n
		return o
	}
	return append(o, Component{Kind: Delete, N: n})
}

func (o Op) insert(s string) Op {
	if s == "" {
		return o
	}
	return o.insertN(s, utf8.RuneCountInString(s))
}

func (o Op) insertN(s string, n int) Op {
	return o.insertC(Component{Kind: Insert, N: n, Text: s})
}

// insertC appends an insert. Joined to a preceding insert it becomes the
// tail of that run and takes the run's tie-break context: each character
// after a run's first was typed right after the one before it.
func (o Op) insertC(c Component) Op {
	l := len(o)
	if l > 0 && o[l-1].Kind == Delete {
		del := o[l-1]
		o = o[:l-1].insertC(c)
		return append(o, del)
	}
	if l > 0 && o[l-1].Kind == Insert {
		o[l-1].Text += c.Text
		o[l-1].N += c.N
		return o
	}
	return append(o, c)
}

// push appends a component through the canonicalising builders.
func (o Op) push(c Component) Op {
	switch c.Kind {
	case Retain:
		return o.retain(c.N)
	case Delete:
		return o.del(c.N)
	case Insert:
		if c.N <= 0 {
			return o
		}
		return o.insertC(c)
	}
	return o
}

// trim drops a trailing retain: the end of the document is kept implicitly.
func (o Op) trim() Op {
	if l := len(o); l > 0 && o[l-1].Kind == Retain {
		return o[:l-1]
	}
	return o
}

// Normalize returns the canonical form of o (see the package comment). It
// does not check validity; call Validate for that.
func (o Op) Normalize() Op {
	if o.canonical() {
		return o // ops are never modified in place: sharing is safe
	}
	var out Op
	for _, c := range o {
		if c.Kind == Insert {
			c.N = utf8.RuneCountInString(c.Text)
		}
		out = out.push(c)
	}
	return out.trim()
}

// canonical reports whether o is already in canonical form (with insert
// lengths that match their text), so Normalize need not rebuild it.
func (o Op) canonical() bool {
	for i, c := range o {
		if c.N <= 0 || (c.Kind == Insert && utf8.RuneCountInString(c.Text) != c.N) {
			return false
		}
		if i > 0 {
			p := o[i-1].Kind
			if p == c.Kind || (p == Delete && c.Kind == Insert) {
				return false
			}
		}
	}
	return len(o) == 0 || o[len(o)-1].Kind != Retain
}

// IsNoop reports whether o changes nothing.
func (o Op) IsNoop() bool {
	for _, c := range o {
		if c.Kind != Retain && c.N > 0 {
			return false
		}
	}
	return true
}

// BaseLen is the number of code points o walks over in the document it is
// applied to (retains plus deletes). Because trailing retains are implicit,
// an op fits any document at least this long.
func (o Op) BaseLen() int {
	n := 0
	for _, c := range o {
		if c.Kind != Insert {
			n += c.N
		}
	}
	return n
}

// Delta is how much o changes the document's length in code points.
func (o Op) Delta() int {
	d := 0
	for _, c := range o {
		switch c.Kind {
		case Insert:
			d += c.N
		case Delete:
			d -= c.N
		}
	}
	return d
}

// Validate checks that every component is well formed: a known kind, a
// positive length, and an insert of valid, non-empty UTF-8 whose cached
// length is right. It does not check that o fits a given document; Apply
// does that.
func (o Op) Validate() error {
	for i, c := range o {
		if c.After < 0 || c.Gone < 0 || c.Seen < 0 || c.Seen > MaxSeen || (c.Kind != Insert && c.hasContext()) {
			return fmt.Errorf("%w: component %d: tie-break context (after %d, gone %d, seen %d, held %v) on a %s", ErrInvalidOp, i, c.After, c.Gone, c.Seen, c.Held, c.Kind)
		}
		switch c.Kind {
		case Retain, Delete:
			if c.N <= 0 {
				return fmt.Errorf("%w: component %d: %s of %d code points (must be positive)", ErrInvalidOp, i, c.Kind, c.N)
			}
		case Insert:
			if c.Text == "" {
				return fmt.Errorf("%w: component %d: empty insert", ErrInvalidOp, i)
			}
			if !utf8.ValidString(c.Text) {
				return fmt.Errorf("%w: component %d: insert is not valid UTF-8", ErrInvalidOp, i)
			}
			if n := utf8.RuneCountInString(c.Text); n != c.N {
				return fmt.Errorf("%w: component %d: insert length %d does not match its text (%d code points)", ErrInvalidOp, i, c.N, n)
			}
		default:
			return fmt.Errorf("%w: component %d: unknown kind %d", ErrInvalidOp, i, c.Kind)
		}
	}
	return nil
}

// checkFits reports an op that walks past the end of a document of docLen
// code points.
func (o Op) checkFits(docLen int) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if b := o.BaseLen(); b > docLen {
		return fmt.Errorf("%w: op spans %d code points but the document has %d", ErrInvalidOp, b, docLen)
	}
	return nil
}

// String renders o in its JSON wire form, for logs and test failures.
func (o Op) String() string {
	b, err := o.MarshalJSON()
	if err != nil {
		return "<invalid op: " + err.Error() + ">"
	}
	return string(b)
}

// Equal reports whether two ops are the same after normalisation.
func (o Op) Equal(p Op) bool {
	a, b := o.Normalize(), p.Normalize()
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of o that shares no backing array with it, so that
// appending to one never changes the other.
func (o Op) Clone() Op {
	if o == nil {
		return nil
	}
	return append(Op(nil), o...)
}
