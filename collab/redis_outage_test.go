package collab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/internal/redistest"
)

type outageOp struct {
	author, cid string
	base        int64
	op          ot.Op
}

// outageWriter submits ops to one document in a loop, each inserting a
// token of its own at the start (valid at any base), and sorts the
// outcomes: acked, or refused with a store outage error.
type outageWriter struct {
	author  string
	acked   map[string]Ack // by client op id
	failed  []outageOp     // refused: outcome unknown, resubmitted later
	other   error          // any other error (the test fails on it)
	acks    atomic.Int64
	outages atomic.Int64
}

func (w *outageWriter) run(svc *Service, stop <-chan struct{}) {
	base := int64(0)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		o := outageOp{w.author, fmt.Sprint(i), base, ot.Op{}.Insert(fmt.Sprintf("<%s.%d>", w.author, i))}
		// Far longer than the store's bound: reaching it means a hang.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		ack, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: o.author, ClientOpID: o.cid, BaseRev: o.base, Op: o.op})
		cancel()
		switch {
		case err == nil:
			w.acked[o.cid] = ack
			base = ack.Rev
			w.acks.Add(1)
		case errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConflict):
			w.failed = append(w.failed, o)
			w.outages.Add(1)
		default:
			w.other = err
			return
		}
	}
}

// TestRedisKilledMidStream: four writers commit to one document while
// redis-server is killed (SIGKILL) and restarted. Ops during the outage
// fail with ErrUnavailable (bounded by the store's timeout, never a
// hang); after the restart the same service accepts ops again; every
// acknowledged op is in the log exactly once at its acknowledged revision;
// the refused ones, resubmitted with their client op ids, are applied at
// most once; the text is the replay of the acknowledged ops.
func TestRedisKilledMidStream(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	store := NewRedisStore(rdb, RedisStoreOptions{Timeout: 2 * time.Second})
	svc := newMemService(t, Config{Store: store, SnapshotEvery: 50, KeepOps: 1 << 20})
	newDoc(t, svc, "d", "")

	writers := make([]*outageWriter, 4)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		writers[i] = &outageWriter{author: fmt.Sprintf("w%d", i), acked: map[string]Ack{}}
		wg.Add(1)
		go func(w *outageWriter) { defer wg.Done(); w.run(svc, stop) }(writers[i])
	}
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt()
	all := func(what string, min int64, count func(w *outageWriter) int64) {
		t.Helper()
		base := make([]int64, len(writers))
		for i, w := range writers {
			base[i] = count(w)
		}
		waitFor(t, what, func() bool {
			for i, w := range writers {
				if count(w)-base[i] < min {
					return false
				}
			}
			return true
		})
	}
	acks := func(w *outageWriter) int64 { return w.acks.Load() }
	all("acks before the kill", 25, acks)
	srv.Kill()
	all("refusals while redis is down", 3, func(w *outageWriter) int64 { return w.outages.Load() })
	srv.Restart()
	all("acks after the restart", 25, acks)
	halt()

	for _, w := range writers {
		if w.other != nil {
			t.Fatalf("%s: unexpected error: %v", w.author, w.other)
		}
	}
	checkOutageLog(t, srv, writers)
}

// checkOutageLog loads the document from Redis in a fresh service and
// checks the log against what the writers were told.
func checkOutageLog(t *testing.T, srv *redistest.Server, writers []*outageWriter) {
	ctx := context.Background()
	store := NewRedisStore(srv.Client(), RedisStoreOptions{})
	svc := newMemService(t, Config{Store: store, KeepOps: 1 << 20})
	head := text(t, svc, "d").Rev
	log, err := store.Ops("d", 0, math.MaxInt64)
	if err != nil || int64(len(log)) != head {
		t.Fatalf("log: %d ops for head %d: %v", len(log), head, err)
	}
	seen := map[dedupKey]int64{}
	for _, r := range log {
		k := dedupKey{r.Author, r.ClientOpID}
		if prev, ok := seen[k]; ok {
			t.Fatalf("op %v logged twice: revisions %d and %d", k, prev, r.Rev)
		}
		seen[k] = r.Rev
	}
	acked, landed := 0, 0
	for _, w := range writers {
		for cid, ack := range w.acked {
			rev, ok := seen[dedupKey{w.author, cid}]
			if !ok || rev != ack.Rev || !log[rev-1].Op.Equal(ack.Op) {
				t.Fatalf("acked op %s/%s (rev %d) not in the log as acked (found at %d, %v)", w.author, cid, ack.Rev, rev, ok)
			}
			acked++
		}
		// The refused ops, resubmitted: those that had landed are
		// recognised, the others applied now; each is in the log once.
		for _, o := range w.failed {
			ack, err := svc.Submit(ctx, SubmitRequest{DocID: "d", Author: o.author, ClientOpID: o.cid, BaseRev: o.base, Op: o.op})
			if err != nil {
				t.Fatalf("resubmit %s/%s: %v", o.author, o.cid, err)
			}
			rev, wasLogged := seen[dedupKey{o.author, o.cid}]
			if ack.Duplicate != wasLogged || (wasLogged && ack.Rev != rev) {
				t.Fatalf("resubmit %s/%s: %+v, logged before: %v at %d", o.author, o.cid, ack, wasLogged, rev)
			}
			if wasLogged {
				landed++
			}
			w.acked[o.cid] = ack
		}
	}
	if int64(acked+landed) != head {
		t.Fatalf("the log holds %d ops, %d acked and %d refused-but-landed", head, acked, landed)
	}
	// The text is the replay of the acknowledged ops, in revision order.
	var all []Ack
	for _, w := range writers {
		for _, a := range w.acked {
			all = append(all, a)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Rev < all[j].Rev })
	doc := ot.NewDoc("")
	for i, a := range all {
		if a.Rev != int64(i+1) {
			t.Fatalf("acked revisions have a hole at %d", i+1)
		}
		if _, err := doc.Apply(a.Op); err != nil {
			t.Fatal(err)
		}
	}
	if got := text(t, svc, "d"); got.Text != doc.String() {
		t.Fatalf("text differs from the replay of the acked ops")
	}
	t.Logf("%d ops acked during the run, %d refused during the outage (%d of those had landed), %d revisions", acked, len(all)-acked, landed, len(all))
}

// blackHole accepts connections and never answers: a Redis that hangs
// (paused, or a network that drops everything).
func blackHole(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// TestRedisHangBounded: with a Redis that accepts and never answers, and a
// client whose own timeouts are an hour, a submit still ends with
// ErrUnavailable: RedisStoreOptions.Timeout bounds every store call.
func TestRedisHangBounded(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	good := NewRedisStore(srv.Client(), RedisStoreOptions{})
	if err := good.CreateDoc(DocMeta{ID: "d", Room: "r"}, Snapshot{}); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: blackHole(t), ReadTimeout: time.Hour, WriteTimeout: time.Hour, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	svc := newMemService(t, Config{Store: NewRedisStore(rdb, RedisStoreOptions{Timeout: 200 * time.Millisecond})})
	sctx, cancel := context.WithTimeout(ctx, time.Minute) // reaching this would be the hang
	defer cancel()
	_, err := svc.Submit(sctx, SubmitRequest{DocID: "d", Author: "a", ClientOpID: "1", Op: ot.Op{}.Insert("x")})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("submit against a hung Redis: %v, want ErrUnavailable", err)
	}
}
