package collab

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time (getrusage; the sampling
// profilers undercount on the shared VMs).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakHeap samples the live heap while fn runs and returns the highest
// value seen, in bytes (heap objects, as runtime/metrics reports them).
func peakHeap(fn func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > peak {
			peak = v
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				read()
			}
		}
	}()
	fn()
	read()
	close(stop)
	wg.Wait()
	return peak
}

// BenchmarkTraceReplay replays the automerge-paper trace (259,778
// single-keystroke ops) through the document service with the bbolt store,
// every op durable before its ack. The author pipelines its ops, so the
// writer group-commits whatever is queued. Reports ops/s and the peak live
// heap during the replay (the parsed trace itself, held throughout, is
// included).
func BenchmarkTraceReplay(b *testing.B) {
	start, end, ops := loadTrace(b, "automerge-paper.json.gz")
	runtime.GC()
	var total, cpu time.Duration
	var peak uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		store, err := OpenBoltStore(b.TempDir(), 0)
		if err != nil {
			b.Fatal(err)
		}
		svc, _ := NewService(Config{Store: store})
		ctx := context.Background()
		if _, err := svc.CreateDoc(ctx, CreateRequest{ID: "doc", Room: "r", Text: start}); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
		t0, c0 := time.Now(), cpuTime()
		p := peakHeap(func() { replay(b, svc, "doc", ops) })
		total, cpu = total+time.Since(t0), cpu+cpuTime()-c0
		b.StopTimer()
		peak = max(peak, p)
		if snap, err := svc.Text(ctx, "doc"); err != nil || snap.Text != end {
			b.Fatalf("replay result differs from endContent: %v", err)
		}
		svc.Close()
		store.Close()
	}
	b.ReportMetric(float64(len(ops)*b.N)/total.Seconds(), "ops/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(len(ops)*b.N)/cpu.Seconds(), "ops/CPU-s")
	b.ReportMetric(0, "ns/op") // the per-replay time is not the interesting number
}

// BenchmarkTraceReplayMem is BenchmarkTraceReplay through the in-memory
// store: the service's own cost per op (transform, apply, log, dedup,
// reply), without the disk. Reports ops/s and heap allocations per op.
func BenchmarkTraceReplayMem(b *testing.B) {
	start, end, ops := loadTrace(b, "automerge-paper.json.gz")
	runtime.GC()
	var total, cpu time.Duration
	var mallocs uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		svc, _ := NewService(Config{Store: NewMemStore()})
		ctx := context.Background()
		if _, err := svc.CreateDoc(ctx, CreateRequest{ID: "doc", Room: "r", Text: start}); err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Text(ctx, "doc"); err != nil { // loaded before the clock starts
			b.Fatal(err)
		}
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		b.StartTimer()
		t0, c0 := time.Now(), cpuTime()
		replay(b, svc, "doc", ops)
		total, cpu = total+time.Since(t0), cpu+cpuTime()-c0
		b.StopTimer()
		runtime.ReadMemStats(&m1)
		mallocs += m1.Mallocs - m0.Mallocs
		if snap, err := svc.Text(ctx, "doc"); err != nil || snap.Text != end {
			b.Fatalf("replay result differs from endContent: %v", err)
		}
		svc.Close()
	}
	b.ReportMetric(float64(len(ops)*b.N)/total.Seconds(), "ops/s")
	b.ReportMetric(float64(mallocs)/float64(len(ops)*b.N), "mallocs/keystroke")
	b.ReportMetric(float64(len(ops)*b.N)/cpu.Seconds(), "ops/CPU-s")
	b.ReportMetric(0, "ns/op")
}
