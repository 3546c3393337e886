package collab

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/internal/redistest"
)

// BenchmarkRedisCommit compares the Redis store (appendfsync always, as
// redistest runs it) with bbolt, side by side in one run: one document,
// ops acknowledged one at a time by one submitter ("sequential"), and
// with 8 submitters each waiting for its own ack ("concurrent"), where the
// writer commits what has queued in one Commit (one script for Redis),
// and one author pipelining ("pipelined": op i sent against revision i
// before op i-1 is acked, as `huddle bench ot` replays a trace).
func BenchmarkRedisCommit(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"bolt", func(b *testing.B) Store {
			s, err := OpenBoltStore(b.TempDir(), 0)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"redis", func(b *testing.B) Store {
			return NewRedisStore(redistest.Start(b).Client(), RedisStoreOptions{})
		}},
	}
	for _, submitters := range []int{1, 8, 0} {
		mode := "sequential"
		switch {
		case submitters > 1:
			mode = fmt.Sprintf("concurrent-%d", submitters)
		case submitters == 0:
			mode = "pipelined"
		}
		for _, st := range stores {
			b.Run(mode+"/"+st.name, func(b *testing.B) {
				svc, err := NewService(Config{Store: st.open(b)})
				if err != nil {
					b.Fatal(err)
				}
				defer svc.Close()
				newDoc(b, svc, "d", "")
				b.ResetTimer()
				t0 := time.Now()
				if submitters == 0 {
					pipeline(b, svc)
				}
				var wg sync.WaitGroup
				for w := 0; w < submitters; w++ {
					wg.Add(1)
					go func(w int) {
						defer wg.Done()
						author, base := fmt.Sprint("a", w), int64(0)
						for i := w; i < b.N; i += submitters {
							ack, err := svc.Submit(context.Background(), SubmitRequest{DocID: "d", Author: author, ClientOpID: fmt.Sprint(i), BaseRev: base, Op: ot.Op{}.Insert("x")})
							if err != nil {
								b.Error(err)
								return
							}
							base = ack.Rev
						}
					}(w)
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "ops/s")
			})
		}
	}
}

// pipeline submits b.N ops from one author without waiting, in bounded
// windows (the document's inbox holds 1024), and checks every ack.
func pipeline(b *testing.B, svc *Service) {
	const window = 512
	pending := make([]<-chan Result, 0, window)
	drain := func() {
		for _, ch := range pending {
			if r := <-ch; r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		pending = pending[:0]
	}
	for i := 0; i < b.N; i++ {
		pending = append(pending, svc.SubmitAsync(SubmitRequest{DocID: "d", Author: "p", ClientOpID: fmt.Sprint(i), BaseRev: int64(i), Op: ot.Op{}.Insert("x")}))
		if len(pending) == window {
			drain()
		}
	}
	drain()
}
