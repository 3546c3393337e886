package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// bench dispatches `huddle bench <what>`.
func bench(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: huddle bench sfu|signaling|ot [flags]")
	}
	switch args[0] {
	case "sfu":
		return benchSFU(args[1:])
	case "sfu-server": // the child process of bench sfu
		return benchServer(args[1:])
	case "ot":
		return benchOT(args[1:])
	case "signaling":
		return benchSignaling(args[1:])
	}
	return fmt.Errorf("unknown benchmark %q (want sfu, signaling or ot)", args[0])
}

// benchConfig is one bench sfu invocation's load.
type benchConfig struct {
	publishers, subscribers int
	pps, fps                int
	audio                   bool
	warmup, duration        time.Duration
	huddleBin               string
	noGSO                   bool
	// pacing is the publishers' pacing rate as a multiple of their media
	// rate (a browser's pacer); 0 sends each frame as one burst.
	pacing float64
	// botsIdle runs the bots (this process) under SCHED_IDLE and the
	// server children at normal priority (bench_sched.go).
	botsIdle bool
}

// paceSlot is one video packet's slot in the publishers' pacer (0: none).
func (c benchConfig) paceSlot() time.Duration {
	if c.pacing <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / (c.pacing * float64(c.pps)))
}

// benchResult is what one server did under the load, measured from
// outside its process.
type benchResult struct {
	Server      string  `json:"server"` // "huddle" or "baseline"
	Publishers  int     `json:"publishers"`
	Subscribers int     `json:"subscribers"`
	Seconds     float64 `json:"seconds"`
	Published   int64   `json:"published"` // packets stamped inside the window
	Expected    int64   `json:"expected"`  // published x receivers (subscribers, and the other publishers)
	Delivered   int64   `json:"delivered"` // of those, received by subscribers
	Gaps        int64   `json:"gaps"`      // sequence numbers subscribers never saw
	// ServerDrops are packets the huddle server itself dropped for a
	// subscriber (queue full or fell behind), from its metrics; 0 for the
	// baseline, which cannot tell.
	ServerDrops int64 `json:"server_drops"`
	// Pauses are videos the huddle server's allocator paused for a
	// subscriber during the window (its estimate said the link pushed
	// back); paused video is not delivered. 0 for the baseline.
	Pauses int64 `json:"pauses"`
	// PausesBefore are those paused before the window, in the warm-up
	// (one still paused delivers nothing in the window and is not in
	// Pauses).
	PausesBefore    int64   `json:"pauses_before_window"`
	CPUSeconds      float64 `json:"cpu_seconds"`
	CPUUsPerPacket  float64 `json:"cpu_us_per_delivered_packet"`
	PacketsPerSec   float64 `json:"delivered_packets_per_second"`
	RSSBytes        int64   `json:"rss_bytes"`
	AllocsPerPacket float64 `json:"allocs_per_delivered_packet"`
	// Thread context switches (voluntary and not) per delivered packet:
	// how often the server's threads sleep and wake.
	SwitchesPerPacket float64 `json:"context_switches_per_delivered_packet"`
	// Latency is bot to bot: from the publisher bot's stamp (before its
	// Pion stack) to where the subscriber bot's SRTP session hands the
	// packet to the track's buffer (loadgen_arrival.go), before the bot's
	// interceptors and read loop. ReadLatencyP99Ms is the p99 to the read
	// loop, the bots' own receive path included.
	LatencyP50Ms     float64 `json:"latency_p50_ms"`
	LatencyP99Ms     float64 `json:"latency_p99_ms"`
	LatencyMaxMs     float64 `json:"latency_max_ms"`
	ReadLatencyP99Ms float64 `json:"latency_to_read_p99_ms"`
	// ForwardP50Ms and ForwardP99Ms are the huddle server's own forward
	// delay (its huddle_media_forward_delay_seconds histogram: from its
	// forwarder reading a packet to the send that carried it to a
	// subscriber), as bucket upper bounds; 0 for the baseline.
	ForwardP50Ms float64 `json:"forward_delay_p50_ms,omitempty"`
	ForwardP99Ms float64 `json:"forward_delay_p99_ms,omitempty"`
	// ForwardMeanMs is its mean, ForwardInBatchMs the mean part spent
	// inside the send batch (rewrite, SRTP, the GSO burst and its send);
	// the rest is the wait for the subscriber's send path to run.
	ForwardMeanMs    float64 `json:"forward_delay_mean_ms,omitempty"`
	ForwardInBatchMs float64 `json:"forward_delay_in_batch_mean_ms,omitempty"`
	// ServerP50Ms, ServerP99Ms and ServerMeanMs are the huddle server's
	// whole added delay (huddle_media_server_delay_seconds: from the
	// kernel's receive stamp on the publisher's packet at the server's
	// socket to the end of the send to a subscriber): the forward delay
	// plus Pion's receive path (the ICE mux, SRTP, the buffer). 0 for the
	// baseline.
	ServerP50Ms  float64 `json:"server_delay_p50_ms,omitempty"`
	ServerP99Ms  float64 `json:"server_delay_p99_ms,omitempty"`
	ServerMeanMs float64 `json:"server_delay_mean_ms,omitempty"`
	// The machine during the window: busy share of all its cores, the
	// bench process's own CPU (the bots, in % of one core), and the
	// 1-minute load average at the end.
	MachineBusyPct float64 `json:"machine_busy_percent"`
	// ServerWaitMsPerS and BotsWaitMsPerS are how long the server's and
	// the bots' threads stood runnable, waiting for a CPU, over the
	// window (summed over threads, /proc/<pid>/task/*/schedstat), in ms
	// per second: the scheduler's share of a latency.
	ServerWaitMsPerS float64 `json:"server_cpu_wait_ms_per_s"`
	BotsWaitMsPerS   float64 `json:"bots_cpu_wait_ms_per_s"`
	BotsCPUPct       float64 `json:"bots_cpu_percent_of_a_core"`
	LoadAverage      float64 `json:"load_average"`
}

// benchSFU loads a server in a child process with publisher and subscriber
// bots and reports its cost per delivered packet; with --baseline it runs
// the same load through the naive Pion forwarder in another child, after
// it, and prints the ratio. Server CPU and RSS come from /proc, so the
// bots' own work (in this process) is not counted.
func benchSFU(args []string) error {
	f := newEnvFlags("bench sfu")
	var cfg benchConfig
	f.IntVar(&cfg.publishers, "publishers", 1, "bots publishing video")
	f.IntVar(&cfg.subscribers, "subscribers", 10, "bots only receiving")
	f.IntVar(&cfg.pps, "pps", 1000, "video packets per second per publisher (1200-byte packets)")
	f.IntVar(&cfg.fps, "fps", 30, "video frames per second per publisher")
	f.BoolVar(&cfg.audio, "audio", false, "publishers also send Opus (50 packets/s)")
	f.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "load before measuring, after every subscriber receives")
	f.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to measure")
	baseline := f.Bool("baseline", false, "also run the naive Pion forwarder and print the ratio")
	rounds := f.Int("rounds", 1, "runs of each server, interleaved")
	asJSON := f.Bool("json", false, "print the results as JSON")
	f.Float64Var(&cfg.pacing, "pacing", 0, "publishers pace their video at this multiple of its rate, as a browser does (2.5 is libwebrtc's default); 0 sends each frame's packets back to back, as Pion's sample writer does")
	bots := f.String("bots", "normal", "scheduling of the bots (this process): normal, or idle (SCHED_IDLE: they run only when the server leaves a CPU; needs root, so that the server children can return to normal)")
	f.BoolVar(&cfg.noGSO, "no-gso", false, "the huddle server sends one packet per system call even where UDP GSO works")
	f.StringVar(&cfg.huddleBin, "huddle-bin", "", "run the huddle server from this binary (another build, to compare commits); default this one")
	half := f.Bool("half-saturation", false, "first ramp subscribers up until the machine saturates (bench_saturate.go), then measure at half that many; --subscribers is ignored")
	rampStep := f.Int("ramp-step", 5, "with --half-saturation: subscribers added per ramp step")
	rampMax := f.Int("ramp-max", 100, "with --half-saturation: most subscribers to try")
	rampWindow := f.Duration("ramp-window", 3*time.Second, "with --half-saturation: measuring window of each ramp step")
	if err := f.parse(args); err != nil {
		return err
	}
	switch *bots {
	case "normal":
	case "idle":
		if err := schedIdleSelf(); err != nil {
			return fmt.Errorf("bench sfu: --bots idle: %w", err)
		}
		cfg.botsIdle = true
	default:
		return fmt.Errorf("bench sfu: --bots %q: want normal or idle", *bots)
	}
	if *half {
		if *rampStep < 1 || *rampMax < *rampStep {
			return errors.New("bench sfu: --ramp-step must be positive and at most --ramp-max")
		}
		w := io.Writer(os.Stdout)
		if *asJSON {
			w = os.Stderr
		}
		sat, err := rampToSaturation(w, cfg, *rampStep, *rampMax, *rampWindow)
		if err != nil {
			return err
		}
		if sat == 0 {
			return fmt.Errorf("bench sfu: the machine kept up with %d subscribers; raise --ramp-max", *rampMax)
		}
		cfg.subscribers = max(1, sat/2)
		fmt.Fprintf(w, "saturation at %d subscribers; measuring at half: %d\n", sat, cfg.subscribers)
	}
	if cfg.publishers < 1 || cfg.subscribers < 1 || cfg.pps < 1 || cfg.fps < 1 || *rounds < 1 {
		return errors.New("bench sfu: publishers, subscribers, pps, fps and rounds must be positive")
	}
	servers := []string{"huddle"}
	if *baseline {
		servers = append(servers, "baseline")
	}
	var results []benchResult
	for range *rounds {
		for _, s := range servers {
			r, err := benchRun(cfg, s)
			if err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
			results = append(results, r)
			if !*asJSON {
				printResult(os.Stdout, r)
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	if *baseline {
		var cpu [2]float64
		var pkts [2]int64
		for _, r := range results {
			i := 0
			if r.Server == "baseline" {
				i = 1
			}
			cpu[i] += r.CPUSeconds
			pkts[i] += r.Delivered
		}
		if pkts[0] > 0 && pkts[1] > 0 && cpu[1] > 0 {
			fmt.Printf("huddle/baseline CPU per delivered packet: %.2fx\n", (cpu[0]/float64(pkts[0]))/(cpu[1]/float64(pkts[1])))
		}
	}
	return nil
}

func printResult(w io.Writer, r benchResult) {
	fmt.Fprintf(w, "%-8s %d pub x %d sub, %.1fs: published %d, delivered %d of %d, gaps %d, server drops %d, pauses %d (%d before the window)\n",
		r.Server, r.Publishers, r.Subscribers, r.Seconds, r.Published, r.Delivered, r.Expected, r.Gaps, r.ServerDrops, r.Pauses, r.PausesBefore)
	fmt.Fprintf(w, "         CPU %.2f us/packet (%.0f%% of a core), %.0f packets/s, RSS %.1f MB, %.2f allocs/packet, %.2f switches/packet\n",
		r.CPUUsPerPacket, 100*r.CPUSeconds/r.Seconds, r.PacketsPerSec, float64(r.RSSBytes)/1e6, r.AllocsPerPacket, r.SwitchesPerPacket)
	fmt.Fprintf(w, "         latency bot to bot p50 %.2f ms p99 %.2f ms max %.2f ms (p99 %.2f ms to the bots' read)%s\n", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.ReadLatencyP99Ms, describeForward(r))
	fmt.Fprintf(w, "         machine %.0f%% busy, bots %.0f%% of a core, waiting for a CPU: server %.1f ms/s, bots %.1f ms/s, load average %.2f\n",
		r.MachineBusyPct, r.BotsCPUPct, r.ServerWaitMsPerS, r.BotsWaitMsPerS, r.LoadAverage)
}

// benchRun starts one server child, loads it and measures it.
func benchRun(cfg benchConfig, server string) (benchResult, error) {
	res := benchResult{Server: server, Publishers: cfg.publishers, Subscribers: cfg.subscribers}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.warmup+cfg.duration+2*time.Minute)
	defer cancel()
	child, err := startChild(server == "baseline", cfg)
	if err != nil {
		return res, err
	}
	defer child.stop()

	g := newLoadgen()
	stopLoad, err := benchBots(ctx, g, cfg, child.url)
	defer stopLoad()
	if err != nil {
		return res, err
	}
	for g.minStamped() < 20 {
		if ctx.Err() != nil {
			// Most often the allocator paused a video for a subscriber
			// before it had counted enough (bots on a loaded machine
			// look like a congested link): say so.
			s := scrapeBench(child.url)
			return res, fmt.Errorf("warm-up: not every subscriber receives every track (server: %d videos paused for a subscriber, %d packets dropped)", s.pauses, s.drops)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(cfg.warmup)

	cpu0, err := procCPU(child.pid())
	if err != nil {
		return res, err
	}
	m0, err := child.mallocs()
	if err != nil {
		return res, err
	}
	sw0 := procSwitches(child.pid())
	wait0, bwait0 := procRunDelay(child.pid()), procRunDelay(os.Getpid())
	s0 := scrapeBench(child.url)
	mm := startMachineMeter()
	start := time.Now()
	g.setWindow(g.now(), g.now()+int64(cfg.duration))
	time.Sleep(cfg.duration)
	res.Seconds = time.Since(start).Seconds()
	mm.stop(&res)
	cpu1, err := procCPU(child.pid())
	if err != nil {
		return res, err
	}
	m1, err := child.mallocs()
	if err != nil {
		return res, err
	}
	sw1 := procSwitches(child.pid())
	res.ServerWaitMsPerS = float64(procRunDelay(child.pid())-wait0) / 1e6 / res.Seconds
	res.BotsWaitMsPerS = float64(procRunDelay(os.Getpid())-bwait0) / 1e6 / res.Seconds
	s1 := scrapeBench(child.url)
	res.ServerDrops = s1.drops - s0.drops
	res.Pauses = s1.pauses - s0.pauses
	res.PausesBefore = s0.pauses
	res.ForwardP50Ms, res.ForwardP99Ms, _ = forwardDelay(s0, s1)
	res.ForwardMeanMs, res.ForwardInBatchMs = forwardMeans(s0, s1)
	res.ServerP50Ms, res.ServerP99Ms, res.ServerMeanMs = serverDelay(s0, s1)
	res.RSSBytes, _ = procRSS(child.pid())
	// Packets stamped at the end of the window are still on their way.
	time.Sleep(500 * time.Millisecond)

	c := g.counts() // all in the window: nothing outside it is counted
	res.Published = c.published
	res.Expected = res.Published * int64(cfg.subscribers+cfg.publishers-1)
	res.Delivered, res.Gaps = c.delivered, c.missing
	res.LatencyP50Ms, res.LatencyP99Ms = ms(c.latency.percentile(0.50)), ms(c.latency.percentile(0.99))
	res.LatencyMaxMs, res.ReadLatencyP99Ms = ms(c.latency.max), ms(c.readLatency.percentile(0.99))
	res.CPUSeconds = cpu1 - cpu0
	if res.Delivered > 0 {
		res.CPUUsPerPacket = 1e6 * res.CPUSeconds / float64(res.Delivered)
		res.AllocsPerPacket = float64(m1-m0) / float64(res.Delivered)
		res.SwitchesPerPacket = float64(sw1-sw0) / float64(res.Delivered)
	}
	res.PacketsPerSec = float64(res.Delivered) / res.Seconds
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// child is a bench server process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	url   string
}

func startChild(baseline bool, cfg benchConfig) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"bench", "sfu-server"}
	switch {
	case baseline:
		args = append(args, "--baseline")
	case cfg.noGSO:
		args = append(args, "--no-gso")
	}
	if cfg.botsIdle {
		args = append(args, "--sched-normal")
	}
	if !baseline && cfg.huddleBin != "" {
		exe = cfg.huddleBin
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server child: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	if !c.out.Scan() {
		c.stop()
		return nil, errors.New("server child printed no url")
	}
	c.url = strings.TrimSpace(c.out.Text())
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) mallocs() (uint64, error) {
	if _, err := io.WriteString(c.stdin, "stats\n"); err != nil {
		return 0, err
	}
	if !c.out.Scan() {
		return 0, errors.New("server child gave no stats")
	}
	var s childStats
	if err := json.Unmarshal(c.out.Bytes(), &s); err != nil {
		return 0, fmt.Errorf("server child stats: %w", err)
	}
	return s.Mallocs, nil
}

// stop closes the child's stdin, which ends it, and waits; a child that
// does not end in time is killed.
func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() {
		c.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// procCPU is a process's user+system CPU time from /proc/<pid>/stat.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("server cpu: %w", err)
	}
	// Fields after the command name (which may hold spaces) start at 3.
	_, rest, ok := strings.Cut(string(b), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0, fmt.Errorf("server cpu: cannot parse /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("server cpu: cannot parse /proc/%d/stat", pid)
	}
	const clockTicks = 100 // USER_HZ, 100 on every Linux Go supports
	return float64(utime+stime) / clockTicks, nil
}

// procSwitches sums the context switches of a process's threads, from
// /proc/<pid>/task/*/status (threads that ended meanwhile are missed; Go
// keeps its threads).
func procSwitches(pid int) int64 {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.HasSuffix(k, "ctxt_switches") {
				x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}

// procRunDelay sums the time a process's threads stood runnable waiting
// for a CPU, in ns (the second field of /proc/<pid>/task/*/schedstat).
func procRunDelay(pid int) int64 {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			x, _ := strconv.ParseInt(f[1], 10, 64)
			n += x
		}
	}
	return n
}

// procRSS is a process's resident set from /proc/<pid>/status.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func devToken(base, name, room string) (string, error) {
	u := strings.TrimSuffix(base, "/") + "/api/dev/token?name=" + url.QueryEscape(name) + "&room=" + url.QueryEscape(room)
	resp, err := http.Get(u)
	if err != nil {
		return "", fmt.Errorf("dev token: %w", err)
	}
	defer resp.Body.Close()
	var body struct{ Token, Error string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Token == "" {
		return "", fmt.Errorf("dev token from %s: %s %s (bench needs a dev-mode server on loopback)", base, resp.Status, body.Error)
	}
	return body.Token, nil
}
