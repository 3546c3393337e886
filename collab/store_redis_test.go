package collab

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/internal/redistest"
)

// setOwner writes the room's owner hash as package cluster does.
func setOwner(t *testing.T, rdb *redis.Client, room, node string, epoch uint64) {
	t.Helper()
	if err := rdb.HSet(context.Background(), RoomOwnerKey(room), "node", node, "epoch", strconv.FormatUint(epoch, 10)).Err(); err != nil {
		t.Fatal(err)
	}
}

// fenceAt is a Fence that holds the epoch in e (0: no epoch held).
func fenceAt(e *atomic.Uint64) func(string) (uint64, bool) {
	return func(string) (uint64, bool) { v := e.Load(); return v, v != 0 }
}

func recs(from, to int64) []OpRecord {
	var out []OpRecord
	for r := from; r <= to; r++ {
		out = append(out, OpRecord{Rev: r, Author: "a", ClientOpID: itoa(r), Op: ot.Op{}.Insert("x"), Inverse: ot.Op{}.Delete(1)})
	}
	return out
}

// TestRedisStoreFence: every write is refused with ErrFenced when the
// room's owner epoch in Redis is not the writer's, when the writer holds
// no epoch, or when the room has no owner; a refused write changes nothing.
func TestRedisStoreFence(t *testing.T) {
	rdb := redistest.Start(t).Client()
	var epoch atomic.Uint64
	epoch.Store(1)
	s := NewRedisStore(rdb, RedisStoreOptions{Fence: fenceAt(&epoch)})
	meta := DocMeta{ID: "d", Room: "r", Created: time.Unix(1, 0).UTC()}
	if err := s.CreateDoc(meta, Snapshot{Text: "t"}); !errors.Is(err, ErrFenced) {
		t.Fatalf("create in a room without owner: %v", err)
	}
	setOwner(t, rdb, "r", "A", 1)
	if err := s.CreateDoc(meta, Snapshot{Text: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit("d", Commit{Ops: recs(1, 3)}); err != nil {
		t.Fatal(err)
	}
	setOwner(t, rdb, "r", "B", 2) // the room moved
	writes := map[string]func() error{
		"commit": func() error {
			return s.Commit("d", Commit{Ops: recs(4, 4), Snapshot: &Snapshot{Rev: 4}, DropOpsBefore: 3, KeepSnapshots: 1})
		},
		"update":    func() error { return s.UpdateDoc(DocMeta{ID: "d", Room: "r", Title: "new"}) },
		"version":   func() error { return s.PutVersion("d", Version{Name: "v", Rev: 1}) },
		"thread":    func() error { return s.PutThread("d", CommentThread{ID: "th"}) },
		"delete":    func() error { return s.DeleteDoc("d") },
		"create":    func() error { return s.CreateDoc(DocMeta{ID: "e", Room: "r"}, Snapshot{}) },
		"no epoch":  func() error { epoch.Store(0); defer epoch.Store(1); return s.Commit("d", Commit{Ops: recs(4, 4)}) },
		"old epoch": func() error { return s.Commit("d", Commit{Ops: recs(4, 4)}) },
	}
	for name, w := range writes {
		if err := w(); !errors.Is(err, ErrFenced) {
			t.Errorf("%s by the old owner: %v, want ErrFenced", name, err)
		}
	}
	if first, last, err := s.LogBounds("d"); err != nil || first != 1 || last != 3 {
		t.Fatalf("log after refused writes: %d..%d %v", first, last, err)
	}
	if m, err := s.Doc("d"); err != nil || m.Title != "" {
		t.Fatalf("meta after refused update: %+v %v", m, err)
	}
	if vs, _ := s.Versions("d"); len(vs) != 0 {
		t.Fatalf("versions after refused put: %+v", vs)
	}
	if ts, _ := s.Threads("d"); len(ts) != 0 {
		t.Fatalf("threads after refused put: %+v", ts)
	}
	if sn, _ := s.Snapshots("d"); len(sn) != 1 {
		t.Fatalf("snapshots after refused commit: %+v", sn)
	}
	epoch.Store(2) // this node is the owner again, with the new epoch
	if err := s.Commit("d", Commit{Ops: recs(4, 4)}); err != nil {
		t.Fatalf("commit with the current epoch: %v", err)
	}
}

// TestRedisStoreRevisionCAS: a commit whose first op is not the stored
// head+1 is refused with ErrConflict and changes nothing.
func TestRedisStoreRevisionCAS(t *testing.T) {
	s := NewRedisStore(redistest.Start(t).Client(), RedisStoreOptions{})
	if err := s.CreateDoc(DocMeta{ID: "d", Room: "r"}, Snapshot{Rev: 0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit("d", Commit{Ops: recs(1, 2)}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Commit{
		"again":  {Ops: recs(1, 2)},
		"gap":    {Ops: recs(4, 4)},
		"behind": {Ops: recs(2, 3)},
		"holes":  {Ops: append(recs(3, 3), recs(5, 5)...)},
	} {
		if err := s.Commit("d", c); !errors.Is(err, ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", name, err)
		}
	}
	if first, last, err := s.LogBounds("d"); err != nil || first != 1 || last != 2 {
		t.Fatalf("log after conflicts: %d..%d %v", first, last, err)
	}
	if err := s.Commit("d", Commit{Ops: recs(3, 3)}); err != nil {
		t.Fatal(err)
	}
}

// TestRedisStoreCompaction: through the service, the ops list, the
// snapshots and their texts stay within KeepOps+SnapshotEvery ops and
// KeepSnapshots snapshots however long the history, as in bbolt; a fresh
// service loads the document from them.
func TestRedisStoreCompaction(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client()
	cfg := Config{Store: NewRedisStore(rdb, RedisStoreOptions{}), SnapshotEvery: 10, KeepOps: 25, KeepSnapshots: 3}
	svc := newMemService(t, cfg)
	newDoc(t, svc, "d", "")
	want := ""
	for i := int64(0); i < 300; i++ {
		submit(t, svc, "d", "a", itoa(i), i, ot.Op{}.Insert("y"))
		want += "y"
	}
	k := keysOf("d")
	if n := rdb.LLen(ctx, k.ops).Val(); n < 25 || n > 25+10 {
		t.Errorf("ops kept: %d, want 25..35", n)
	}
	if n, m := rdb.ZCard(ctx, k.snaps).Val(), rdb.HLen(ctx, k.snaptext).Val(); n != 3 || m != 3 {
		t.Errorf("snapshots kept: %d indexed, %d texts; want 3", n, m)
	}
	svc2 := newMemService(t, Config{Store: NewRedisStore(rdb, RedisStoreOptions{})})
	if got := text(t, svc2, "d"); got.Text != want || got.Rev != 300 {
		t.Fatalf("reloaded: rev %d, %d code points", got.Rev, len(got.Text))
	}
	// A resubmission inside the retained log is still recognised.
	if ack := submit(t, svc2, "d", "a", "299", 299, ot.Op{}.Insert("y")); !ack.Duplicate || ack.Rev != 300 {
		t.Fatalf("resubmit after reload: %+v", ack)
	}
	if err := svc2.DeleteDoc(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if keys := rdb.Keys(ctx, "huddle:doc:*").Val(); len(keys) != 0 {
		t.Fatalf("keys left after delete: %v", keys)
	}
}
