package main

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// serverSample is what the bench reads from a server's /metrics at the
// edges of the window.
type serverSample struct {
	drops  int64
	pauses int64 // videos the allocator paused for a subscriber
	// delay is the huddle server's forward delay histogram
	// (huddle_media_forward_delay_seconds): cumulative counts by upper
	// bound in seconds, +Inf included. Empty for the baseline.
	delay map[float64]uint64
	// The histogram's sum, and the part of it spent inside send batches
	// (huddle_media_forward_delay_in_batch_seconds_total), in seconds.
	delaySum, inBatch float64
	// server is huddle_media_server_delay_seconds: the same from the
	// packet's arrival at the server's socket (the kernel's stamp), the
	// whole delay the server adds; serverSum its sum in seconds.
	server    map[float64]uint64
	serverSum float64
}

func scrapeBench(base string) serverSample {
	s := serverSample{delay: map[float64]uint64{}, server: map[float64]uint64{}}
	resp, err := http.Get(strings.TrimSuffix(base, "/") + "/metrics")
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "huddle_media_packets_dropped_total{"); ok {
			if _, v, ok := strings.Cut(rest, "} "); ok {
				x, _ := strconv.ParseFloat(v, 64)
				s.drops += int64(x)
			}
		}
		if v, ok := strings.CutPrefix(line, "huddle_media_video_pauses_total "); ok {
			x, _ := strconv.ParseFloat(v, 64)
			s.pauses = int64(x)
		}
		if v, ok := strings.CutPrefix(line, "huddle_media_forward_delay_seconds_sum "); ok {
			s.delaySum, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, "huddle_media_forward_delay_in_batch_seconds_total "); ok {
			s.inBatch, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, "huddle_media_server_delay_seconds_sum "); ok {
			s.serverSum, _ = strconv.ParseFloat(v, 64)
		}
		scrapeBucket(s.delay, line, "huddle_media_forward_delay_seconds")
		scrapeBucket(s.server, line, "huddle_media_server_delay_seconds")
	}
	return s
}

// scrapeBucket notes one bucket line of histogram name into into.
func scrapeBucket(into map[float64]uint64, line, name string) {
	rest, ok := strings.CutPrefix(line, name+`_bucket{le="`)
	if !ok {
		return
	}
	le, v, ok := strings.Cut(rest, `"} `)
	if !ok {
		return
	}
	b, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
	n, err2 := strconv.ParseFloat(v, 64)
	if err1 == nil && err2 == nil {
		into[b] = uint64(n)
	}
}

// serverDelay is the p50, p99 and mean of the server delay (socket to
// send) between two samples, in ms, like forwardDelay.
func serverDelay(a, b serverSample) (p50, p99, mean float64) {
	p50, p99, _ = histPercentiles(a.server, b.server)
	if n := b.server[math.Inf(1)] - a.server[math.Inf(1)]; n > 0 {
		mean = 1e3 * (b.serverSum - a.serverSum) / float64(n)
	}
	return p50, p99, mean
}

// forwardMeans are the mean forward delay between two samples and the
// mean part of it spent inside send batches, in ms.
func forwardMeans(a, b serverSample) (mean, inBatch float64) {
	n := b.delay[math.Inf(1)] - a.delay[math.Inf(1)]
	if n == 0 {
		return 0, 0
	}
	return 1e3 * (b.delaySum - a.delaySum) / float64(n), 1e3 * (b.inBatch - a.inBatch) / float64(n)
}

// forwardDelay is the p50 and p99 of the forward delay between two
// samples, in ms: the upper bound of the bucket that holds them (+Inf as
// the largest finite bound's double). ok is false when the server has no
// such histogram (the baseline) or sent nothing.
func forwardDelay(a, b serverSample) (p50, p99 float64, ok bool) {
	return histPercentiles(a.delay, b.delay)
}

// histPercentiles are p50 and p99 of the difference of two scrapes of one
// histogram (cumulative counts by upper bound), in ms.
func histPercentiles(a, b map[float64]uint64) (p50, p99 float64, ok bool) {
	bounds := make([]float64, 0, len(b))
	for le := range b {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return 0, 0, false
	}
	total := b[bounds[len(bounds)-1]] - a[bounds[len(bounds)-1]]
	if total == 0 {
		return 0, 0, false
	}
	pct := func(q float64) float64 {
		want := uint64(math.Ceil(q * float64(total)))
		for i, le := range bounds {
			if b[le]-a[le] >= want {
				if math.IsInf(le, 1) && i > 0 {
					return 2 * bounds[i-1] * 1e3
				}
				return le * 1e3
			}
		}
		return math.Inf(1)
	}
	return pct(0.50), pct(0.99), true
}

// machineCPU is the machine's busy and total CPU time from /proc/stat
// (all cores, in clock ticks): the bench shares the machine with its
// bots, and on a shared machine with everything else.
func machineCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// loadAverage is the machine's 1-minute load average.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// machineMeter measures a window: the machine's busy share, the bench
// process's own CPU (the bots), the load average at its end.
type machineMeter struct {
	busy, total uint64
	self        time.Duration
	start       time.Time
}

func startMachineMeter() machineMeter {
	m := machineMeter{self: cpuTime(), start: time.Now()}
	m.busy, m.total = machineCPU()
	return m
}

// stop fills the result's machine fields.
func (m machineMeter) stop(r *benchResult) {
	busy, total := machineCPU()
	if total > m.total {
		r.MachineBusyPct = 100 * float64(busy-m.busy) / float64(total-m.total)
	}
	if s := time.Since(m.start).Seconds(); s > 0 {
		r.BotsCPUPct = 100 * (cpuTime() - m.self).Seconds() / s
	}
	r.LoadAverage = loadAverage()
}

// describeForward is the forward delay column of a printed result.
func describeForward(r benchResult) string {
	if r.ForwardP99Ms == 0 {
		return ""
	}
	return fmt.Sprintf("; server delay (socket to socket) p50 <= %.2f ms p99 <= %.2f ms mean %.2f ms, of it forward delay (forwarder read to sent) p50 <= %.2f ms p99 <= %.2f ms mean %.2f ms (%.2f ms in the send batch)",
		r.ServerP50Ms, r.ServerP99Ms, r.ServerMeanMs, r.ForwardP50Ms, r.ForwardP99Ms, r.ForwardMeanMs, r.ForwardInBatchMs)
}
