package collab

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// failingStore fails Commit while fail is set, like a full disk.
type failingStore struct {
	Store
	fail atomic.Bool
}

var errDiskFull = errors.New("disk full")

func (s *failingStore) Commit(docID string, c Commit) error {
	if s.fail.Load() {
		return errDiskFull
	}
	return s.Store.Commit(docID, c)
}

// TestCommitFailureNoAck: an op whose commit fails is neither acked nor
// broadcast, and the document goes back to what the store holds.
func TestCommitFailureNoAck(t *testing.T) {
	ctx := context.Background()
	store := &failingStore{Store: NewMemStore()}
	svc := newMemService(t, Config{Store: store})
	newDoc(t, svc, "d", "ab")
	submit(t, svc, "d", "a", "1", 0, ot.Op{}.Insert("x"))
	sub, _ := svc.Subscribe(ctx, "d")
	store.fail.Store(true)
	if _, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: "2", BaseRev: 1, Op: ot.Op{}.Insert("y")}); !errors.Is(err, errDiskFull) {
		t.Fatalf("submit during failing commit: %v", err)
	}
	select {
	case r := <-sub.C:
		t.Fatalf("failed op was broadcast: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	if got := text(t, svc, "d"); got.Text != "xab" || got.Rev != 1 {
		t.Fatalf("after failed commit: %+v", got)
	}
	store.fail.Store(false)
	// The same op again is applied now (it was never applied before).
	ack := submit(t, svc, "d", "a", "2", 1, ot.Op{}.Insert("y"))
	if ack.Duplicate || ack.Rev != 2 {
		t.Fatalf("resubmit after failure: %+v", ack)
	}
	if r := <-sub.C; r.Rev != 2 || r.ClientOpID != "2" {
		t.Fatalf("broadcast %+v", r)
	}
}
