package collab

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// countingStore counts the log entries a Store hands out.
type countingStore struct {
	Store
	opsRead atomic.Int64
}

func (c *countingStore) Ops(docID string, after, upTo int64) ([]OpRecord, error) {
	ops, err := c.Store.Ops(docID, after, upTo)
	c.opsRead.Add(int64(len(ops)))
	return ops, err
}

// typeHistory appends n one-character ops by one author (pipelined, as
// the trace replay does) to a document at revision base.
func typeHistory(tb testing.TB, svc *Service, docID string, base int64, n int) {
	tb.Helper()
	var last <-chan Result
	for i := 0; i < n; i++ {
		rev := base + int64(i)
		op := ot.Op{}.Retain(int(rev % 50)).Insert("x")
		if rev >= 100 {
			op = ot.Op{}.Retain(int(rev % 50)).Delete(1).Insert("y")
		}
		last = svc.SubmitAsync(SubmitRequest{DocID: docID, Author: "typist", ClientOpID: fmt.Sprint(rev), BaseRev: rev, Op: op})
	}
	if r := <-last; r.Err != nil || r.Ack.Rev != base+int64(n) {
		tb.Fatalf("history: %v at %d", r.Err, r.Ack.Rev)
	}
}

// TestOpenReadsSnapshotAndAfter: opening a document with a long history
// reads its newest snapshot and the ops after it, nothing older, however
// long the history; de-duplication of an op applied before that snapshot
// and undo still work after the reopen.
func TestOpenReadsSnapshotAndAfter(t *testing.T) {
	cs := &countingStore{Store: NewMemStore()}
	cfg := Config{Store: cs} // production SnapshotEvery and KeepOps
	svc := newMemService(t, cfg)
	newDoc(t, svc, "d", "")
	typeHistory(t, svc, "d", 0, 20_300)
	ctx := context.Background()
	want := text(t, svc, "d")
	svc.Close()

	cs.opsRead.Store(0)
	svc = newMemService(t, cfg)
	if got := text(t, svc, "d"); got.Rev != want.Rev || got.Text != want.Text {
		t.Fatalf("reopened at %d, want %d", got.Rev, want.Rev)
	}
	// A snapshot is taken every 500 ops (at the end of a commit batch):
	// the open read exactly the ops after the newest one.
	snaps, err := cs.Snapshots("d")
	if err != nil {
		t.Fatal(err)
	}
	after := want.Rev - snaps[len(snaps)-1].Rev
	if n := cs.opsRead.Load(); n != after || n > 500+512 {
		t.Fatalf("open read %d ops from the store, want the %d after the newest snapshot", n, after)
	}
	// A resubmission of revision 19,900's op (before the snapshot) is
	// recognised, not applied again.
	ack, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "typist", ClientOpID: "19899", BaseRev: 19_899, Op: ot.Op{}.Retain(49).Delete(1).Insert("y")})
	if err != nil || !ack.Duplicate || ack.Rev != 19_900 {
		t.Fatalf("resubmission from before the snapshot: %+v %v", ack, err)
	}
	if _, err := svc.Undo(ctx, "d", "typist"); err != nil {
		t.Fatalf("undo after reopen: %v", err)
	}
	if got := text(t, svc, "d"); got.Rev != want.Rev+1 {
		t.Fatalf("after undo at %d, want %d", got.Rev, want.Rev+1)
	}
}

// BenchmarkOpenLongHistory opens a document whose history is 10 thousand
// or 1 million ops: the cost follows the document, not its history
// (ops-read/open is what the store handed out per open).
func BenchmarkOpenLongHistory(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("history=%d", n), func(b *testing.B) {
			cs := &countingStore{Store: NewMemStore()}
			// One op per commit, so that snapshots fall every 500 ops
			// exactly and both histories end 123 ops after one.
			cfg := Config{Store: cs, IdleTimeout: 1 << 40, MaxBatch: 1}
			svc, err := NewService(cfg)
			if err != nil {
				b.Fatal(err)
			}
			newDoc(b, svc, "d", "")
			typeHistory(b, svc, "d", 0, n+123)
			svc.Close()
			cs.opsRead.Store(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				svc, _ := NewService(cfg)
				if _, err := svc.Text(context.Background(), "d"); err != nil {
					b.Fatal(err)
				}
				svc.Close()
			}
			b.ReportMetric(float64(cs.opsRead.Load())/float64(b.N), "ops-read/open")
		})
	}
}

// TestRestoreKeepsDistantChangesApart: restoring a version whose text
// differs at two distant places changes just those two places, so an edit
// made meanwhile between them lands where its author put it.
func TestRestoreKeepsDistantChangesApart(t *testing.T) {
	svc := newMemService(t, Config{})
	ctx := context.Background()
	mid := "one two three four five six seven eight nine ten "
	newDoc(t, svc, "d", "Title A\n"+mid+"end A\n")
	if _, err := svc.NameVersion(ctx, "d", "v1", "a", 0); err != nil {
		t.Fatal(err)
	}
	submit := func(cid string, base int64, op ot.Op) {
		t.Helper()
		if _, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: cid, BaseRev: base, Op: op}); err != nil {
			t.Fatal(err)
		}
	}
	submit("1", 0, ot.Op{}.Retain(6).Delete(1).Insert("B"))            // Title B
	submit("2", 1, ot.Op{}.Retain(8+len(mid)+4).Delete(1).Insert("B")) // end B
	ack, err := svc.RestoreVersion(ctx, "d", "a", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if ack.Op.String() != `[6,"A",{"d":1},`+fmt.Sprint(len(mid)+5)+`,"A",{"d":1}]` {
		t.Fatalf("restore op %v: want two one-character changes", ack.Op)
	}
	// Someone inserts after "five " without having seen the restore.
	submit("3", 2, ot.Op{}.Retain(8+24).Insert("and a half "))
	want := "Title A\none two three four five and a half six seven eight nine ten end A\n"
	if got := text(t, svc, "d").Text; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestCatchUpTooFarBehind: a client behind the retained log gets a
// snapshot; one within it gets the ops.
func TestCatchUpTooFarBehind(t *testing.T) {
	svc := newMemService(t, Config{SnapshotEvery: 10, KeepOps: 10})
	newDoc(t, svc, "d", "")
	typeHistory(t, svc, "d", 0, 100)
	ctx := context.Background()
	head := text(t, svc, "d")
	ops, snap, err := svc.CatchUp(ctx, "d", 1)
	if err != nil || ops != nil || snap == nil || snap.Rev != head.Rev || snap.Text != head.Text {
		t.Fatalf("far behind: %d ops, snapshot %+v, %v", len(ops), snap, err)
	}
	ops, snap, err = svc.CatchUp(ctx, "d", head.Rev-3)
	if err != nil || snap != nil || len(ops) != 3 || ops[2].Rev != head.Rev {
		t.Fatalf("close behind: %d ops, snapshot %v, %v", len(ops), snap, err)
	}
	if ops, snap, err = svc.CatchUp(ctx, "d", head.Rev); err != nil || snap != nil || ops == nil || len(ops) != 0 {
		t.Fatalf("up to date: %v %v %v", ops, snap, err)
	}
}

// TestDedupBaseOlderThanLog: an op made against a revision that
// compaction has since dropped, but itself still in the retained log, is
// recognised when it is resubmitted (with its original base), not
// refused as too old and not applied twice.
func TestDedupBaseOlderThanLog(t *testing.T) {
	svc := newMemService(t, Config{SnapshotEvery: 10, KeepOps: 10})
	newDoc(t, svc, "d", "")
	for i := int64(0); i < 24; i++ {
		submit(t, svc, "d", "a", itoa(i), i, ot.Op{}.Insert("x"))
	}
	late := submit(t, svc, "d", "b", "late", 15, ot.Op{}.Insert("y")) // made at revision 15, applied at 25
	for i := int64(25); i < 30; i++ {
		submit(t, svc, "d", "a", itoa(i), i, ot.Op{}.Insert("x"))
	}
	// The snapshot at 30 kept the last 10 ops: 21 to 30.
	if _, err := svc.OpsSince(context.Background(), "d", 15); !errors.Is(err, ErrRevisionTooOld) {
		t.Fatalf("revision 15 should be compacted away by now: %v", err)
	}
	dup := submit(t, svc, "d", "b", "late", 15, ot.Op{}.Insert("y"))
	if !dup.Duplicate || dup.Rev != late.Rev || !dup.Op.Equal(late.Op) {
		t.Fatalf("resubmission %+v, the original ack was %+v", dup, late)
	}
	if got := text(t, svc, "d"); got.Rev != 30 {
		t.Fatalf("at revision %d after the resubmission, want 30", got.Rev)
	}
}
