package ot

// Compose returns one op with the effect of applying a and then b:
// Apply(Apply(s, a), b) == Apply(s, Compose(a, b)). b must be an op on the
// text a produces. Clients use it to fold local edits typed while an
// earlier one waits for the server's ack into a single buffered op.
func Compose(a, b Op) Op {
	var out Op
	ia, ib := iter{op: a}, iter{op: b}
	for !ia.done() || !ib.done() {
		switch {
		case ia.kind() == Delete:
			out = out.push(ia.take(-1)) // gone before b sees the text
		case ib.kind() == Insert:
			out = out.push(ib.take(-1)) // new text a never saw
		case ib.done():
			out = out.push(ia.take(-1)) // b keeps the rest
		case ia.done():
			out = out.push(ib.take(-1)) // a kept the rest; b retains or deletes it
		default:
			// a retains or inserts; b retains or deletes the same span.
			n := min(ia.remaining(), ib.remaining())
			ca, cb := ia.take(n), ib.take(n)
			switch {
			case cb.Kind == Retain:
				out = out.push(ca)
			case ca.Kind == Retain: // b deletes original text
				out = out.del(n)
			}
			// a inserted and b deleted it: nothing remains of either.
		}
	}
	return out.trim()
}
