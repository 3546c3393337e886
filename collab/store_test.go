package collab

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/internal/redistest"
)

// storeOpeners are the Store implementations the conformance tests run
// against. Each opener starts a fresh persistent store for the test and
// returns a function that opens it (again: after a Close, the same data).
func storeOpeners() map[string]func(t *testing.T) func() Store {
	return map[string]func(t *testing.T) func() Store{
		"mem": func(t *testing.T) func() Store {
			s := NewMemStore()
			return func() Store { return s }
		},
		"bolt": func(t *testing.T) func() Store {
			dir := t.TempDir()
			return func() Store {
				s, err := OpenBoltStore(dir, 0)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		},
		"redis": func(t *testing.T) func() Store {
			rdb := redistest.Start(t).Client()
			return func() Store { return NewRedisStore(rdb, RedisStoreOptions{}) }
		},
	}
}

// TestStores runs the same checks against every Store implementation, so
// the in-memory store used by tests behaves like the real ones.
func TestStores(t *testing.T) {
	for name, open := range storeOpeners() {
		t.Run(name, func(t *testing.T) {
			s := open(t)()
			defer s.Close()
			now := time.Unix(1700000000, 0).UTC()
			meta := DocMeta{ID: "d", Room: "r", Title: "T", Created: now}
			if err := s.CreateDoc(meta, Snapshot{Rev: 0, Text: "hi", Time: now}); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateDoc(meta, Snapshot{}); !errors.Is(err, ErrDocExists) {
				t.Fatalf("create twice: %v", err)
			}
			if _, err := s.Doc("x"); !errors.Is(err, ErrUnknownDoc) {
				t.Fatalf("unknown doc: %v", err)
			}
			if err := s.Commit("x", Commit{}); !errors.Is(err, ErrUnknownDoc) {
				t.Fatalf("commit to unknown doc: %v", err)
			}
			var recs []OpRecord
			for i := int64(1); i <= 10; i++ {
				recs = append(recs, OpRecord{Rev: i, Author: "a", ClientOpID: itoa(i), Op: ot.Op{}.Insert("é"), Inverse: ot.Op{}.Delete(1), Time: now})
			}
			if err := s.Commit("d", Commit{Ops: recs[:5]}); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit("d", Commit{Ops: recs[5:], Snapshot: &Snapshot{Rev: 10, Text: "x", Time: now}, DropOpsBefore: 4, KeepSnapshots: 1}); err != nil {
				t.Fatal(err)
			}
			first, last, err := s.LogBounds("d")
			if err != nil || first != 4 || last != 10 {
				t.Fatalf("bounds %d..%d %v", first, last, err)
			}
			ops, err := s.Ops("d", 5, 8)
			if err != nil || len(ops) != 3 || ops[0].Rev != 6 || !ops[0].Op.Equal(recs[5].Op) || ops[0].ClientOpID != "6" {
				t.Fatalf("ops: %+v %v", ops, err)
			}
			if sn, ok, err := s.Snapshot("d", math.MaxInt64); err != nil || !ok || sn.Rev != 10 || sn.Text != "x" {
				t.Fatalf("snapshot: %+v %v %v", sn, ok, err)
			}
			if _, ok, _ := s.Snapshot("d", 9); ok {
				t.Fatal("snapshot 0 should have been pruned")
			}
			if err := s.PutVersion("d", Version{Name: "v", Rev: 3, Text: "t", Time: now}); err != nil {
				t.Fatal(err)
			}
			if err := s.PutVersion("d", Version{Name: "v"}); !errors.Is(err, ErrVersionExists) {
				t.Fatalf("version twice: %v", err)
			}
			if v, err := s.Version("d", "v"); err != nil || v.Text != "t" {
				t.Fatalf("version: %+v %v", v, err)
			}
			meta.Title = "U"
			if err := s.UpdateDoc(meta); err != nil {
				t.Fatal(err)
			}
			if docs, err := s.Docs("r"); err != nil || len(docs) != 1 || docs[0].Title != "U" {
				t.Fatalf("docs: %+v %v", docs, err)
			}
			if err := s.DeleteDoc("d"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Ops("d", 0, 10); !errors.Is(err, ErrUnknownDoc) {
				t.Fatalf("ops of deleted doc: %v", err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	svc, _ := NewService(Config{Store: NewMemStore()})
	newDoc(t, svc, "d", "")
	submit(t, svc, "d", "a", "1", 0, ot.Op{}.Insert("x"))
	sub, _ := svc.Subscribe(context.Background(), "d")
	svc.Close()
	if _, ok := <-sub.C; ok || !errors.Is(sub.Err(), ErrClosed) {
		t.Fatalf("subscription after close: %v", sub.Err())
	}
	if _, err := svc.Submit(context.Background(), SubmitRequest{DocID: "d", Author: "a", BaseRev: 1, Op: ot.Op{}.Insert("x")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
}

// TestStoreCompactsManyPages: a compaction that drops thousands of ops,
// over many bbolt pages, in one commit, leaves exactly the ops from the
// cut on, contiguous (deleting at a cursor can skip keys if done wrong).
func TestStoreCompactsManyPages(t *testing.T) {
	for name, s := range map[string]Store{"mem": NewMemStore(), "bolt": openBolt(t)} {
		t.Run(name, func(t *testing.T) {
			defer s.Close()
			now := time.Unix(1700000000, 0).UTC()
			if err := s.CreateDoc(DocMeta{ID: "d", Room: "r", Created: now}, Snapshot{Time: now}); err != nil {
				t.Fatal(err)
			}
			const n, cut = 3000, 2500
			var recs []OpRecord
			for i := int64(1); i <= n; i++ {
				recs = append(recs, OpRecord{Rev: i, Author: "author", ClientOpID: "client-op-" + itoa(i), Op: ot.Op{}.Retain(int(i)).Insert("some inserted text"), Inverse: ot.Op{}.Retain(int(i)).Delete(18), Time: now})
			}
			for i := 0; i < n; i += 500 {
				if err := s.Commit("d", Commit{Ops: recs[i : i+500]}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Commit("d", Commit{DropOpsBefore: cut}); err != nil {
				t.Fatal(err)
			}
			first, last, err := s.LogBounds("d")
			if err != nil || first != cut || last != n {
				t.Fatalf("bounds %d..%d %v, want %d..%d", first, last, err, cut, n)
			}
			ops, err := s.Ops("d", 0, n)
			if err != nil || len(ops) != n-cut+1 {
				t.Fatalf("%d ops after the cut, want %d: %v", len(ops), n-cut+1, err)
			}
			for i, r := range ops {
				if r.Rev != cut+int64(i) {
					t.Fatalf("op %d has revision %d, want %d", i, r.Rev, cut+int64(i))
				}
			}
			// Again with ops put in the same commit (bbolt then deletes
			// from pages it already holds in memory).
			const n2, cut2 = 5000, 4800
			var more []OpRecord
			for i := int64(n + 1); i <= n2; i++ {
				more = append(more, OpRecord{Rev: i, Author: "author", ClientOpID: "client-op-" + itoa(i), Op: ot.Op{}.Retain(int(i)).Insert("some inserted text"), Inverse: ot.Op{}.Retain(int(i)).Delete(18), Time: now})
			}
			if err := s.Commit("d", Commit{Ops: more, DropOpsBefore: cut2}); err != nil {
				t.Fatal(err)
			}
			ops, err = s.Ops("d", 0, n2)
			if err != nil || len(ops) != n2-cut2+1 {
				t.Fatalf("%d ops after the second cut, want %d: %v", len(ops), n2-cut2+1, err)
			}
			for i, r := range ops {
				if r.Rev != cut2+int64(i) {
					t.Fatalf("op %d has revision %d, want %d", i, r.Rev, cut2+int64(i))
				}
			}
		})
	}
}

func openBolt(t *testing.T) Store {
	t.Helper()
	s, err := OpenBoltStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
