package ot

// TransformPosition moves a cursor position (in code points) through op.
// own says whether the cursor's owner made op: an insert exactly at your own
// cursor pushes it past the inserted text (you typed it), while someone
// else's insert at your cursor leaves it in front. A cursor inside deleted
// text moves to where the deletion was.
func TransformPosition(pos int, op Op, own bool) int {
	newPos := pos
	old := 0 // position in the original text at the start of c
	for _, c := range op {
		if old > pos {
			break
		}
		switch c.Kind {
		case Retain:
			old += c.N
		case Insert:
			if old < pos || own {
				newPos += c.N
			}
		case Delete:
			if old < pos {
				newPos -= min(c.N, pos-old)
			}
			old += c.N
		}
	}
	return newPos
}

// Selection is a text selection: Anchor is where it started, Head where
// the caret is. A collapsed selection (Anchor == Head) is a plain cursor.
type Selection struct {
	Anchor int `json:"anchor"`
	Head   int `json:"head"`
}

// TransformSelection moves both ends of s through op (see TransformPosition).
func TransformSelection(s Selection, op Op, own bool) Selection {
	return Selection{
		Anchor: TransformPosition(s.Anchor, op, own),
		Head:   TransformPosition(s.Head, op, own),
	}
}
