package collab

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/internal/redistest"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestRedisFailoverDedup: two services (nodes A and B) on one Redis,
// fenced by the room's owner epoch. A writes; the room moves to B; A's
// next op is refused with ErrFenced (not acked, its subscriber is cut and
// the document unloaded); B loads the document from Redis; the client
// resubmits A's unacked op to B with the same client op id: applied once;
// an acked one resubmitted: not applied again. When the room comes back
// to A, A loads B's edits fresh from Redis.
func TestRedisFailoverDedup(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client()
	var epochA, epochB atomic.Uint64
	epochA.Store(1)
	setOwner(t, rdb, "room", "A", 1)
	a := newMemService(t, Config{Store: NewRedisStore(rdb, RedisStoreOptions{Fence: fenceAt(&epochA)})})
	b := newMemService(t, Config{Store: NewRedisStore(rdb, RedisStoreOptions{Fence: fenceAt(&epochB)})})
	newDoc(t, a, "d", "")
	submit(t, a, "d", "u", "1", 0, ot.Op{}.Insert("one "))
	sub, err := a.Subscribe(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}

	setOwner(t, rdb, "room", "B", 2) // failover: B owns the room now
	epochB.Store(2)
	_, err = a.Submit(ctx, SubmitRequest{DocID: "d", Author: "u", ClientOpID: "2", BaseRev: 1, Op: ot.Op{}.Retain(4).Insert("two ")})
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("old owner's submit: %v, want ErrFenced", err)
	}
	if _, ok := <-sub.C; ok || !errors.Is(sub.Err(), ErrFenced) {
		t.Fatalf("old owner's subscriber: %v, want cut with ErrFenced", sub.Err())
	}
	waitFor(t, "A to unload the document", func() bool { return a.OpenDocs() == 0 })

	if got := text(t, b, "d"); got.Text != "one " || got.Rev != 1 {
		t.Fatalf("new owner loads %+v, want rev 1 %q", got, "one ")
	}
	// The client reconnects to B and resubmits its unacked op: applied once.
	ack := submit(t, b, "d", "u", "2", 1, ot.Op{}.Retain(4).Insert("two "))
	if ack.Duplicate || ack.Rev != 2 {
		t.Fatalf("resubmitted unacked op: %+v", ack)
	}
	if again := submit(t, b, "d", "u", "2", 1, ot.Op{}.Retain(4).Insert("two ")); !again.Duplicate || again.Rev != 2 {
		t.Fatalf("same op once more: %+v", again)
	}
	// An op A had acknowledged, resubmitted (its ack was lost): not again.
	if dup := submit(t, b, "d", "u", "1", 0, ot.Op{}.Insert("one ")); !dup.Duplicate || dup.Rev != 1 {
		t.Fatalf("resubmitted acked op: %+v", dup)
	}
	if got := text(t, b, "d"); got.Text != "one two " || got.Rev != 2 {
		t.Fatalf("after failover: %+v", got)
	}
	// A, still fenced, loads afresh and is refused again: it never writes.
	if _, err := a.Submit(ctx, SubmitRequest{DocID: "d", Author: "v", ClientOpID: "x", BaseRev: 2, Op: ot.Op{}.Insert("stale ")}); !errors.Is(err, ErrFenced) {
		t.Fatalf("old owner after B wrote: %v", err)
	}
	// The room comes back to A (epoch 3): A's copy is B's, from Redis.
	setOwner(t, rdb, "room", "A", 3)
	epochA.Store(3)
	epochB.Store(0)
	if got := text(t, a, "d"); got.Text != "one two " || got.Rev != 2 {
		t.Fatalf("A after the room came back: %+v", got)
	}
	if ack := submit(t, a, "d", "u", "3", 2, ot.Op{}.Retain(8).Insert("three")); ack.Rev != 3 || ack.Duplicate {
		t.Fatalf("A's edit after the room came back: %+v", ack)
	}
	// B still holds its copy at revision 2 (nothing told it): its write
	// is fenced, and the copy dropped.
	if _, err := b.Submit(ctx, SubmitRequest{DocID: "d", Author: "u", ClientOpID: "4", BaseRev: 2, Op: ot.Op{}.Insert("!")}); !errors.Is(err, ErrFenced) {
		t.Fatalf("B after the room left it: %v", err)
	}
	waitFor(t, "B to unload the document", func() bool { return b.OpenDocs() == 0 })
	// ReleaseRoom: a node told it lost the room cuts its readers at once.
	subA, err := a.Subscribe(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ReleaseRoom(ctx, "room"); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-subA.C; ok || !errors.Is(subA.Err(), ErrFenced) {
		t.Fatalf("subscriber after ReleaseRoom: %v", subA.Err())
	}
	waitFor(t, "A to unload the released room", func() bool { return a.OpenDocs() == 0 })
}

// TestRedisFencedMetadataUnloads: a metadata write refused by the fence
// (a rename) unloads the document as a refused commit does.
func TestRedisFencedMetadataUnloads(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client()
	var epoch atomic.Uint64
	epoch.Store(1)
	setOwner(t, rdb, "room", "A", 1)
	svc := newMemService(t, Config{Store: NewRedisStore(rdb, RedisStoreOptions{Fence: fenceAt(&epoch)})})
	newDoc(t, svc, "d", "x")
	sub, err := svc.Subscribe(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	setOwner(t, rdb, "room", "B", 2)
	if err := svc.RenameDoc(ctx, "d", "new title"); !errors.Is(err, ErrFenced) {
		t.Fatalf("rename by the old owner: %v", err)
	}
	if _, ok := <-sub.C; ok || !errors.Is(sub.Err(), ErrFenced) {
		t.Fatalf("subscriber: %v, want cut with ErrFenced", sub.Err())
	}
	waitFor(t, "the document to unload", func() bool { return svc.OpenDocs() == 0 })
	if m, err := NewRedisStore(rdb, RedisStoreOptions{}).Doc("d"); err != nil || m.Title != "d" {
		t.Fatalf("stored meta: %+v %v", m, err)
	}
}
