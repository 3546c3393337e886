package collab

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/collab/client"
	"github.com/huddle-rtc/huddle/collab/ot"
)

// typist is one client typing a run, one keystroke per op, at its caret.
type typist struct {
	author string
	run    []rune
	typed  int
	caret  int
	c      *client.Client
	outbox []client.Submission // sent, not yet reached the server
	seen   int64               // server revisions delivered to it
}

// TestRunsNeverInterleave is the non-interleaving property: two or three
// clients start typing a run at the same spot of one document through the
// real service. Keystrokes, submissions and deliveries of the server's ops
// happen in a random order (any client may be any number of round trips
// behind), each client keeps typing right after its own last keystroke.
// Every run ends up contiguous in the converged text. (One function, with
// the step as a closure over the seed's state, so a failing seed reads in
// one place.)
func TestRunsNeverInterleave(t *testing.T) {
	alphabets := []string{"abcdefgh", "ABCDEFGH", "01234567"}
	for seed := int64(1); seed <= 300; seed++ {
		r := rand.New(rand.NewSource(seed))
		svc := newMemService(t, Config{})
		ctx := context.Background()
		newDoc(t, svc, "d", "XY")
		n := 2 + int(seed%2)
		ts := make([]*typist, n)
		for i := range ts {
			runLen := 2 + r.Intn(6)
			ts[i] = &typist{author: fmt.Sprintf("u%d", i), run: []rune(alphabets[i][:runLen]), caret: 1,
				c: client.New(fmt.Sprintf("c%d-", i), 0, "XY")}
		}
		step := func(tp *typist) bool { // one random action for tp; false if it had none
			head := text(t, svc, "d").Rev
			var acts []int
			if tp.typed < len(tp.run) {
				acts = append(acts, 0)
			}
			if len(tp.outbox) > 0 {
				acts = append(acts, 1)
			}
			if tp.seen < head {
				acts = append(acts, 2)
			}
			if len(acts) == 0 {
				return false
			}
			switch acts[r.Intn(len(acts))] {
			case 0:
				s, err := tp.c.ApplyLocal(ot.Op{}.Retain(tp.caret).Insert(string(tp.run[tp.typed])))
				if err != nil {
					t.Fatal(err)
				}
				tp.typed++
				tp.caret++
				if s != nil {
					tp.outbox = append(tp.outbox, *s)
				}
			case 1:
				s := tp.outbox[0]
				tp.outbox = tp.outbox[1:]
				if _, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: tp.author, ClientOpID: s.ClientOpID, BaseRev: s.BaseRev, Op: s.Op}); err != nil {
					t.Fatalf("seed %d: %s: %v", seed, tp.author, err)
				}
			case 2:
				ops, err := svc.OpsSince(ctx, "d", tp.seen)
				if err != nil {
					t.Fatal(err)
				}
				rec := ops[0]
				cid := rec.ClientOpID
				if rec.Author != tp.author {
					cid = ""
				}
				view, send, err := tp.c.Receive(rec.Rev, cid, rec.Op)
				if err != nil {
					t.Fatalf("seed %d: %s: %v", seed, tp.author, err)
				}
				tp.seen = rec.Rev
				tp.caret = ot.TransformPosition(tp.caret, view, false)
				if send != nil {
					tp.outbox = append(tp.outbox, *send)
				}
			}
			return true
		}
		for busy := true; busy; {
			busy = false
			for _, i := range r.Perm(n) {
				if step(ts[i]) {
					busy = true
					break
				}
			}
		}
		final := text(t, svc, "d").Text
		for _, tp := range ts {
			if tp.c.Text() != final {
				t.Fatalf("seed %d: %s has %q, server %q", seed, tp.author, tp.c.Text(), final)
			}
			if !strings.Contains(final, string(tp.run)) {
				t.Fatalf("seed %d: run %q of %s interleaved: %q", seed, string(tp.run), tp.author, final)
			}
		}
		if !strings.HasPrefix(final, "X") || !strings.HasSuffix(final, "Y") {
			t.Fatalf("seed %d: runs left their spot: %q", seed, final)
		}
	}
}
