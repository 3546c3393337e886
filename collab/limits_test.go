package collab

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// TestSizeLimits runs with the production limits (8 MiB documents, 4 MiB
// ops): a 20 MB paste, a paste that would take a 7 MiB document over 8 MiB,
// and a document created over the limit are refused with ErrTooLarge and
// change nothing; the document stays editable, and a document over the limit
// (made under a higher one) can still be cut down.
func TestSizeLimits(t *testing.T) {
	store := NewMemStore()
	svc := newMemService(t, Config{Store: store})
	ctx := context.Background()
	newDoc(t, svc, "d", "hello")
	sub, err := svc.Subscribe(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	paste := strings.Repeat("0123456789", 2_000_000) // 20 MB
	_, err = svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: "1", BaseRev: 0, Op: ot.Op{}.Retain(5).Insert(paste)})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "op of 20000016 bytes, the limit is 4194304") {
		t.Fatalf("20 MB paste: %v", err)
	}
	if s := text(t, svc, "d"); s.Text != "hello" || s.Rev != 0 {
		t.Fatalf("after the refused paste: rev %d, %d bytes", s.Rev, len(s.Text))
	}
	if _, last, _ := store.LogBounds("d"); last != 0 {
		t.Fatalf("the refused paste reached the log: last revision %d", last)
	}
	select {
	case r := <-sub.C:
		t.Fatalf("subscriber got an op from a refused paste: %v", r.Rev)
	default:
	}
	// Still editable.
	if ack, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: "2", BaseRev: 0, Op: ot.Op{}.Retain(5).Insert("!")}); err != nil || ack.Rev != 1 {
		t.Fatalf("edit after the refusal: %v %v", ack, err)
	}

	// A 7 MiB document: a 2 MiB paste (under the op limit) would take it
	// over 8 MiB.
	big := strings.Repeat("x", 7<<20)
	newDoc(t, svc, "big", big)
	two := strings.Repeat("y", 2<<20)
	_, err = svc.Submit(ctx, SubmitRequest{DocID: "big", Author: "a", ClientOpID: "1", Op: ot.Op{}.Insert(two)})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "the document would be 9437184 bytes, the limit is 8388608") {
		t.Fatalf("paste over the document limit: %v", err)
	}
	if s := text(t, svc, "big"); s.Rev != 0 || s.Text != big {
		t.Fatalf("refused paste changed the document: rev %d", s.Rev)
	}
	// Replacing 2 MiB with 2 MiB keeps the size: accepted.
	if _, err := svc.Submit(ctx, SubmitRequest{DocID: "big", Author: "a", ClientOpID: "2", Op: ot.Op{}.Insert(two).Delete(2 << 20)}); err != nil {
		t.Fatalf("replace at the same size: %v", err)
	}

	// Creating a document over the limit is refused and stores nothing.
	if _, err := svc.CreateDoc(ctx, CreateRequest{ID: "huge", Room: "r", Text: strings.Repeat("z", 8<<20+1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("create over the limit: %v", err)
	}
	if _, err := store.Doc("huge"); !errors.Is(err, ErrUnknownDoc) {
		t.Fatalf("refused document was stored: %v", err)
	}
}

// TestSizeLimitNeverLocksOut: a document over a lowered limit refuses
// growth but accepts edits that keep or shrink it.
func TestSizeLimitNeverLocksOut(t *testing.T) {
	store := NewMemStore()
	big := newMemService(t, Config{Store: store})
	newDoc(t, big, "d", strings.Repeat("a", 2000))
	big.Close()
	svc := newMemService(t, Config{Store: store, MaxDocBytes: 1000})
	ctx := context.Background()
	if _, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: "1", Op: ot.Op{}.Insert("b")}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("growth over the limit: %v", err)
	}
	if _, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: "2", Op: ot.Op{}.Insert("b").Delete(1)}); err != nil {
		t.Fatalf("same-size edit over the limit: %v", err)
	}
	if _, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: "3", BaseRev: 1, Op: ot.Op{}.Delete(1500)}); err != nil {
		t.Fatalf("cut down: %v", err)
	}
	if _, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: "4", BaseRev: 2, Op: ot.Op{}.Insert("ccc")}); err != nil {
		t.Fatalf("growth under the limit: %v", err)
	}
	if s := text(t, svc, "d"); s.Rev != 3 || len(s.Text) != 503 {
		t.Fatalf("rev %d, %d bytes", s.Rev, len(s.Text))
	}
}

// TestOpSizeCountsContext: the tie-break context a client puts on its
// inserts counts against MaxOpBytes like their text (ot.ContextBytes), so
// it cannot make the server store many times the limit.
func TestOpSizeCountsContext(t *testing.T) {
	svc := newMemService(t, Config{MaxOpBytes: 100})
	ctx := context.Background()
	newDoc(t, svc, "d", "ab")
	full := ot.Component{Kind: ot.Insert, N: 1, Text: "x", After: ot.MaxContext, Gone: ot.MaxContext, Seen: ot.MaxSeen, Held: true}
	heavy := ot.Op{full, {Kind: ot.Retain, N: 1}, full} // 3*8 + 2 + 2*63 = 152 bytes
	_, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: "1", Op: heavy})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "op of 152 bytes") {
		t.Fatalf("op with full context: %v", err)
	}
	light := ot.Op{}.Insert("x").Retain(1).Insert("x") // 26 bytes
	if _, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: "2", Op: light}); err != nil {
		t.Fatalf("the same op without context: %v", err)
	}
}
