package collab

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab/client"
	"github.com/huddle-rtc/huddle/collab/ot"
)

// TestConcurrentClients: goroutine clients, each with its own client-side
// OT state (collab/client), edit one document at random moments; some
// submissions are sent twice (a resubmit after a "reconnect"). Everyone
// converges on the server's text, and the log holds every acked op once.
func TestConcurrentClients(t *testing.T) {
	store, err := OpenBoltStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := newMemService(t, Config{Store: store, SnapshotEvery: 50})
	newDoc(t, svc, "d", "start")
	ctx := context.Background()

	const clients, edits = 8, 40
	var (
		mu    sync.Mutex
		acked = map[string]int64{} // author/clientOpID -> revision
		fail  = make(chan error, clients*edits*2)
		wg    sync.WaitGroup
	)
	// check verifies one submission's result; a duplicate must carry the
	// original revision.
	check := func(author string, s client.Submission, ch <-chan Result) {
		defer wg.Done()
		r := <-ch
		if r.Err != nil {
			fail <- fmt.Errorf("%s %s: %w", author, s.ClientOpID, r.Err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		key := author + "/" + s.ClientOpID
		if prev, ok := acked[key]; ok && prev != r.Ack.Rev {
			fail <- fmt.Errorf("%s acked at %d and %d", key, prev, r.Ack.Rev)
		}
		acked[key] = r.Ack.Rev
	}

	type result struct {
		text string
		rev  int64
	}
	synced := make(chan struct{}, clients)
	finalRev := make(chan int64)
	results := make(chan result, clients)
	var cwg sync.WaitGroup
	for i := 0; i < clients; i++ {
		cwg.Add(1)
		go func(i int) {
			defer cwg.Done()
			author := fmt.Sprintf("user%d", i)
			r := rand.New(rand.NewSource(int64(i)))
			sub, err := svc.Subscribe(ctx, "d")
			if err != nil {
				fail <- err
				return
			}
			defer sub.Close()
			c := client.New("c", sub.Rev, sub.Text)
			send := func(s *client.Submission) {
				if s == nil {
					return
				}
				req := SubmitRequest{DocID: "d", Author: author, ClientOpID: s.ClientOpID, BaseRev: s.BaseRev, Op: s.Op}
				wg.Add(1)
				go check(author, *s, svc.SubmitAsync(req))
				if r.Intn(4) == 0 { // reconnect: the same op again, later
					wg.Add(1)
					go func(s client.Submission) {
						time.Sleep(time.Duration(r2(i)) * time.Millisecond)
						check(author, s, svc.SubmitAsync(req))
					}(*s)
				}
			}
			receive := func(rec OpRecord) {
				cid := rec.ClientOpID
				if rec.Author != author {
					cid = "" // another author's op with a clashing id is not ours
				}
				_, next, err := c.Receive(rec.Rev, cid, rec.Op)
				if err != nil {
					fail <- fmt.Errorf("%s: %w", author, err)
				}
				send(next)
			}
			timer := time.NewTimer(0)
			made := 0
			for made < edits || c.State() != client.Synchronized {
				select {
				case rec, ok := <-sub.C:
					if !ok {
						fail <- fmt.Errorf("%s: subscription ended: %v", author, sub.Err())
						return
					}
					receive(rec)
				case <-timer.C:
					if made < edits {
						made++
						s, err := c.ApplyLocal(randomEdit(r, c.Len()))
						if err != nil {
							fail <- err
							return
						}
						send(s)
						timer.Reset(time.Duration(r.Intn(3000)) * time.Microsecond)
					}
				}
			}
			synced <- struct{}{}
			target := <-finalRev
			for c.Revision() < target {
				receive(<-sub.C)
			}
			results <- result{c.Text(), c.Revision()}
		}(i)
	}
	for i := 0; i < clients; i++ {
		select {
		case <-synced:
		case err := <-fail:
			t.Fatal(err)
		}
	}
	wg.Wait() // every submission, duplicates included, answered
	server := text(t, svc, "d")
	for i := 0; i < clients; i++ {
		finalRev <- server.Rev
	}
	cwg.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	for i := 0; i < clients; i++ {
		res := <-results
		if res.text != server.Text || res.rev != server.Rev {
			t.Fatalf("client at %d has %q, server at %d has %q", res.rev, res.text, server.Rev, server.Text)
		}
	}
	// The log holds each acked op exactly once, and replays to the text.
	ops, err := svc.OpsSince(ctx, "d", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != len(acked) || int64(len(ops)) != server.Rev {
		t.Fatalf("log has %d ops, %d distinct acks, head %d", len(ops), len(acked), server.Rev)
	}
	seen := map[string]bool{}
	doc := "start"
	for _, rec := range ops {
		key := rec.Author + "/" + rec.ClientOpID
		if seen[key] || acked[key] != rec.Rev {
			t.Fatalf("log entry %s at %d: seen %v, acked at %d", key, rec.Rev, seen[key], acked[key])
		}
		seen[key] = true
		if doc, err = ot.Apply(doc, rec.Op); err != nil {
			t.Fatal(err)
		}
	}
	if doc != server.Text {
		t.Fatalf("log replays to %q, server has %q", doc, server.Text)
	}
}

var r2mu sync.Mutex
var r2rand = rand.New(rand.NewSource(99))

// r2 is a shared random delay source for the resubmitting goroutines.
func r2(int) int {
	r2mu.Lock()
	defer r2mu.Unlock()
	return r2rand.Intn(5)
}

func randomEdit(r *rand.Rand, n int) ot.Op {
	pos := r.Intn(n + 1)
	op := ot.Op{}.Retain(pos)
	if n > pos && r.Intn(3) == 0 {
		return op.Delete(1 + r.Intn(min(3, n-pos)))
	}
	return op.Insert([]string{"a", "é", "😀", "中文", "xy "}[r.Intn(5)])
}
