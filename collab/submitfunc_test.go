package collab

import (
	"errors"
	"testing"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// TestSubmitFunc: the callback gets every request back with its result,
// exactly once, in submit order for one document: acks, a duplicate, a
// refused op (the document is unchanged by it) and a request refused
// before it is queued (empty author, on the caller's goroutine).
func TestSubmitFunc(t *testing.T) {
	svc := newMemService(t, Config{})
	newDoc(t, svc, "d", "ab")
	type got struct {
		id  string
		res Result
	}
	results := make(chan got, 8) // room for every submit: done never blocks
	done := func(req SubmitRequest, r Result) { results <- got{req.ClientOpID, r} }
	svc.SubmitFunc(SubmitRequest{DocID: "d", Author: "", ClientOpID: "anon", Op: ot.Op{}.Insert("x")}, done)
	if g := <-results; g.id != "anon" || !errors.Is(g.res.Err, ErrBadRequest) {
		t.Fatalf("empty author: %+v", g)
	}
	reqs := []SubmitRequest{
		{DocID: "d", Author: "a", ClientOpID: "1", BaseRev: 0, Op: ot.Op{}.Insert("x")},
		{DocID: "d", Author: "a", ClientOpID: "2", BaseRev: 1, Op: ot.Op{}.Retain(9).Insert("y")}, // past the end
		{DocID: "d", Author: "a", ClientOpID: "3", BaseRev: 1, Op: ot.Op{}.Retain(3).Insert("z")},
		{DocID: "d", Author: "a", ClientOpID: "1", BaseRev: 0, Op: ot.Op{}.Insert("x")}, // resubmitted
	}
	for _, r := range reqs {
		svc.SubmitFunc(r, done)
	}
	want := []struct {
		id  string
		rev int64
		err error
		dup bool
	}{{"1", 1, nil, false}, {"2", 0, ErrInvalidOp, false}, {"3", 2, nil, false}, {"1", 1, nil, true}}
	for i, w := range want {
		g := <-results
		if g.id != w.id || g.res.Ack.Rev != w.rev || !errors.Is(g.res.Err, w.err) || (w.err == nil && g.res.Err != nil) || g.res.Ack.Duplicate != w.dup {
			t.Fatalf("result %d: %+v, want %+v", i, g, w)
		}
	}
	if s := text(t, svc, "d"); s.Text != "xabz" || s.Rev != 2 {
		t.Fatalf("text %+v", s)
	}
	select {
	case g := <-results:
		t.Fatalf("a result more than submits: %+v", g)
	default:
	}
}
