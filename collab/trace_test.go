package collab

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// The editing traces come from Joseph Gentle's editing-traces collection
// (automerge-paper: automerge-perf data by Martin Kleppmann; seph-blog1,
// rustcode, sveltecomponent: CC BY 4.0, Joseph Gentle). shared/ sits beside
// the repository clone, so from this package it is ../../shared; a git
// worktree one level deeper (wt/issueN) finds it at ../../../shared, and
// HUDDLE_TRACES names the directory outright.
var traceDir = findTraceDir()

func findTraceDir() string {
	if d := os.Getenv("HUDDLE_TRACES"); d != "" {
		return d
	}
	for _, d := range []string{"../../shared/data/traces", "../../../shared/data/traces"} {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return "../../shared/data/traces"
}

type trace struct {
	StartContent string `json:"startContent"`
	EndContent   string `json:"endContent"`
	Txns         []struct {
		Patches [][3]json.RawMessage `json:"patches"`
	} `json:"txns"`
}

// loadTrace reads a trace and turns every patch into an op, in order.
func loadTrace(tb testing.TB, name string) (start, end string, ops []ot.Op) {
	tb.Helper()
	f, err := os.Open(filepath.Join(traceDir, name))
	if err != nil {
		tb.Fatalf("trace %s (shared/ must sit beside the repository): %v", name, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var tr trace
	if err := json.NewDecoder(zr).Decode(&tr); err != nil {
		tb.Fatalf("decode %s: %v", name, err)
	}
	for _, txn := range tr.Txns {
		for _, p := range txn.Patches {
			var pos, del int
			var ins string
			if err := json.Unmarshal(p[0], &pos); err != nil {
				tb.Fatal(err)
			}
			if err := json.Unmarshal(p[1], &del); err != nil {
				tb.Fatal(err)
			}
			if err := json.Unmarshal(p[2], &ins); err != nil {
				tb.Fatal(err)
			}
			ops = append(ops, ot.Op{}.Retain(pos).Delete(del).Insert(ins).Normalize())
		}
	}
	return tr.StartContent, tr.EndContent, ops
}

func traceNames(tb testing.TB) []string {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(traceDir, "*.json.gz"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no traces in %s (shared/ must sit beside the repository): %v", traceDir, err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

// replay submits ops as one author pipelining them (op i made against
// revision i), so the writer commits them in batches; it checks every ack.
func replay(tb testing.TB, svc *Service, docID string, ops []ot.Op) {
	tb.Helper()
	var first error
	i := int64(0)
	done := make(chan struct{})
	onResult := func(_ SubmitRequest, r Result) { // on the writer, in order
		i++
		if first == nil && r.Err != nil {
			first = r.Err
		} else if first == nil && r.Ack.Rev != i {
			first = &revError{want: i, got: r.Ack.Rev}
		}
		if i == int64(len(ops)) {
			close(done)
		}
	}
	for i, op := range ops {
		svc.SubmitFunc(SubmitRequest{DocID: docID, Author: "typist", ClientOpID: itoa(int64(i)), BaseRev: int64(i), Op: op}, onResult)
	}
	if len(ops) > 0 {
		<-done
	}
	if first != nil {
		tb.Fatalf("replay: %v", first)
	}
}

type revError struct{ want, got int64 }

func (e *revError) Error() string { return "ack revision " + itoa(e.got) + ", want " + itoa(e.want) }

func TestTraceReplay(t *testing.T) {
	for _, name := range traceNames(t) {
		t.Run(name, func(t *testing.T) {
			start, end, ops := loadTrace(t, name)
			// Plain string application first: the trace and our op
			// conversion agree with endContent.
			dir := t.TempDir()
			store, err := OpenBoltStore(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := NewService(Config{Store: store, SnapshotEvery: 1000, KeepOps: 2000})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := svc.CreateDoc(ctx, CreateRequest{ID: "doc", Room: "r", Text: start}); err != nil {
				t.Fatal(err)
			}
			replay(t, svc, "doc", ops)
			snap, err := svc.Text(ctx, "doc")
			if err != nil {
				t.Fatal(err)
			}
			if snap.Text != end || snap.Rev != int64(len(ops)) {
				t.Fatalf("text differs from endContent (rev %d of %d, len %d vs %d)", snap.Rev, len(ops), len(snap.Text), len(end))
			}
			// Reopen from disk: snapshot + log give the same text.
			svc.Close()
			store.Close()
			store, err = OpenBoltStore(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			svc, _ = NewService(Config{Store: store, SnapshotEvery: 1000, KeepOps: 2000})
			defer svc.Close()
			snap, err = svc.Text(ctx, "doc")
			if err != nil || snap.Text != end || snap.Rev != int64(len(ops)) {
				t.Fatalf("after reopen: rev %d, equal=%v, err %v", snap.Rev, snap.Text == end, err)
			}
			first, last, _ := store.LogBounds("doc")
			if last != int64(len(ops)) || (len(ops) > 3000 && last-first+1 > 3000) {
				t.Fatalf("log bounds %d..%d: compaction did not keep the window", first, last)
			}
		})
	}
}
