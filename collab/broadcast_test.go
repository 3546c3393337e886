package collab

import (
	"context"
	"testing"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// TestSharedEncoding: the subscribers of a document get each op with one
// encoding for all of them: enc runs once however many ask; a record read
// from the log (not broadcast) is encoded on every call.
func TestSharedEncoding(t *testing.T) {
	svc := newMemService(t, Config{})
	newDoc(t, svc, "d", "ab")
	ctx := context.Background()
	var subs []*Subscription
	for range 3 {
		sub, err := svc.Subscribe(ctx, "d")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs = append(subs, sub)
	}
	submit(t, svc, "d", "alice", "a1", 0, ot.Op{}.Insert("x"))
	submit(t, svc, "d", "alice", "a2", 1, ot.Op{}.Retain(3).Insert("y"))
	calls := 0
	enc := func(r OpRecord) []byte { calls++; return []byte(r.Op.String()) }
	for rev := int64(1); rev <= 2; rev++ {
		var first []byte
		for i, sub := range subs {
			rec := <-sub.C
			if rec.Rev != rev {
				t.Fatalf("subscriber %d: revision %d, want %d", i, rec.Rev, rev)
			}
			b := rec.SharedEncoding(enc)
			if i == 0 {
				first = b
			} else if string(b) != string(first) {
				t.Fatalf("subscriber %d got %q, the first %q", i, b, first)
			}
		}
	}
	if calls != 2 {
		t.Fatalf("enc ran %d times for 2 ops and 3 subscribers, want 2", calls)
	}
	ops, err := svc.OpsSince(ctx, "d", 0)
	if err != nil || len(ops) != 2 {
		t.Fatalf("ops since 0: %v %v", ops, err)
	}
	ops[0].SharedEncoding(enc)
	ops[0].SharedEncoding(enc)
	if calls != 4 {
		t.Fatalf("a logged record's encoding was shared: enc ran %d times, want 4", calls)
	}
}
