package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// loadShape is one room's make-up. Every participant subscribes to
// everyone else (as in the page); publishers also send.
type loadShape struct {
	name        string
	publishers  int
	subscribers int  // receive only
	audioOnly   bool // publishers send Opus only
	// tileW and tileH are the size at which every participant shows each
	// video (reported to the server, which picks the simulcast layer).
	tileW, tileH int
}

var loadShapes = map[string]loadShape{
	// Everyone on camera and microphone, in a 4x3 grid on a 1280x720 window.
	"meeting": {"meeting", 10, 0, false, 320, 180},
	// Two speakers side by side.
	"webinar": {"webinar", 2, 100, false, 640, 360},
	"audio":   {"audio", 50, 0, true, 0, 0}, // an audio-only call of 50
}

// loadTest ramps rooms of one shape against a server, a step at a time,
// measuring each step, and stops where quality drops. Without --url it runs
// `huddle serve` as a child process, so that the server's CPU and memory
// are its own and not the bots'.
//
// It is long because it is the command's whole script: flags, server,
// steps, summary; the parts are in loadtest_bots.go.
func loadTest(args []string) error {
	f := newEnvFlags("load-test")
	target := f.String("url", "", "server to load (default: start `huddle serve` as a child process on loopback)")
	shapeName := f.String("shape", "meeting", "room shape: meeting (10 on camera), webinar (2 speakers, 100 viewers), audio (50, audio only), or custom")
	pubs := f.Int("publishers", 2, "custom shape: publishers per room")
	subs := f.Int("subscribers", 2, "custom shape: receive-only participants per room")
	audioOnly := f.FlagSet.Bool("audio-only", false, "custom shape: publishers send audio only")
	maxRooms := f.Int("rooms", 8, "the most rooms to ramp to")
	step := f.Int("step", 1, "rooms added per step")
	stepDur := f.Duration("step-duration", 10*time.Second, "how long each step is measured, after its new participants receive media")
	fps := f.Int("fps", 30, "video frames per second")
	kbps := f.Int("video-kbps", 600, "bitrate of each publisher's full-resolution video layer (VP8 simulcast: the other two layers add 1/6 and 1/3 of it)")
	maxLoss := f.String("max-loss", "1", "quality drops when loss exceeds this percentage")
	maxLatency := f.Duration("max-latency", 150*time.Millisecond, "quality drops when the p95 added latency exceeds this")
	key := f.String("api-key", "", "mint tokens with this key (default: dev tokens from a dev-mode server)")
	secret := f.String("api-secret", "", "secret of --api-key")
	if err := f.parse(args); err != nil {
		return err
	}
	lossLimit, err := strconv.ParseFloat(*maxLoss, 64)
	if err != nil {
		return fmt.Errorf("load-test: --max-loss %q: %w", *maxLoss, err)
	}
	shape, ok := loadShapes[*shapeName]
	if *shapeName == "custom" {
		shape, ok = loadShape{"custom", *pubs, *subs, *audioOnly, 640, 360}, true
	}
	if !ok || shape.publishers+shape.subscribers < 2 || *maxRooms < 1 || *step < 1 {
		return fmt.Errorf("load-test: --shape %q: want meeting, webinar, audio or custom, with at least 2 participants, --rooms and --step at least 1", *shapeName)
	}
	ctx, stop := untilInterrupted(0)
	defer stop()

	base := *target
	if base == "" {
		child, err := startChildServer(ctx)
		if err != nil {
			return err
		}
		defer child.stop()
		base = child.url
	}
	tokens := func(ctx context.Context, identity, room string) (string, error) {
		if *key != "" {
			return auth.Mint(*key, *secret, auth.Claims{Identity: identity, Name: identity, Room: room, Grants: protocol.AllGrants()}, time.Hour)
		}
		return sdk.DevToken(ctx, base, identity, room)
	}
	lt := &loadRun{base: base, shape: shape, fps: *fps, kbps: *kbps, tokens: tokens, g: newLoadgen(),
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	if shape.audioOnly {
		lt.kbps = 0
	}
	lt.g.openWindow() // steps are measured by differences of counts
	defer lt.stop()

	fmt.Printf("huddle load-test: shape %s (%d publishers%s + %d viewers per room), up to %d rooms, %d per step, %v per step, against %s\n",
		shape.name, shape.publishers, map[bool]string{true: " audio only", false: fmt.Sprintf(" VP8 simulcast up to %d kbps @ %d fps, shown at %dx%d, + Opus", *kbps, *fps, shape.tileW, shape.tileH)}[shape.audioOnly],
		shape.subscribers, *maxRooms, *step, *stepDur, base)
	fmt.Println("step rooms people  srv-cpu%  srv-MB  bots-cpu%  sent/s  recv/s  Mbit/s  loss%  paused  join-p95  media-p95  lat-p50  lat-p95  quality")
	var good *stepResult
	for rooms := 0; rooms < *maxRooms && ctx.Err() == nil; {
		n := min(*step, *maxRooms-rooms)
		if err := lt.addRooms(ctx, rooms, n); err != nil {
			return err
		}
		rooms += n
		res, err := lt.measure(ctx, rooms, *stepDur)
		if err != nil {
			return err
		}
		// A video the server paused for a subscriber's bandwidth is quality
		// lost as surely as loss or latency.
		res.ok = res.lossPct <= lossLimit && time.Duration(res.latP95*float64(time.Millisecond)) <= *maxLatency && res.recvPerSec > 0 && res.paused == 0
		fmt.Printf("\r%-4d %5d %6d  %7.0f  %6.0f  %8.0f  %6.0f  %6.0f  %6.1f  %5.2f  %6d  %8s  %9s  %5.1fms  %5.1fms  %s\n",
			rooms / *step, res.rooms, res.people, res.srvCPU*100, res.srvMB, res.botCPU*100, res.sentPerSec, res.recvPerSec, res.mbps,
			res.lossPct, res.paused, res.joinP95.Round(time.Millisecond), res.mediaP95.Round(time.Millisecond), res.latP50, res.latP95, map[bool]string{true: "ok", false: "DROPPED"}[res.ok])
		if !res.ok {
			break
		}
		good = res
	}
	if good == nil {
		fmt.Printf("RESULT shape=%s quality dropped at the first step\n", shape.name)
		return nil
	}
	perCore := 0.0
	if good.srvCPU > 0 {
		perCore = float64(good.people) / good.srvCPU
	}
	fmt.Printf("RESULT shape=%s participants=%d rooms=%d server_cpu=%.2f cores participants_per_core=%.0f recv_pps=%.0f loss_pct=%.2f latency_p95_ms=%.1f\n",
		shape.name, good.people, good.rooms, good.srvCPU, perCore, good.recvPerSec, good.lossPct, good.latP95)
	return nil
}

// loadRun is the bots of one run.
type loadRun struct {
	base      string
	shape     loadShape
	fps, kbps int
	tokens    func(ctx context.Context, identity, room string) (string, error)
	log       *slog.Logger

	g      *loadgen // the media, sent and received
	stats  loadStats
	rooms  []*sdk.Room
	cancel []context.CancelFunc
	wg     sync.WaitGroup // publishers' senders
	people int
	fresh  []*botReceiver // the last step's participants (nil: its join failed)
}

// addRooms joins n more rooms' participants, receivers first, eight joins
// at a time.
func (lt *loadRun) addRooms(ctx context.Context, from, n int) error {
	type member struct {
		identity, room string
		publish        bool
		seat           int // publishers: index in the room, for taking turns to talk
	}
	var members []member
	for r := from; r < from+n; r++ {
		room := fmt.Sprintf("load-%d-%d", time.Now().Unix(), r)
		for i := range lt.shape.subscribers {
			members = append(members, member{fmt.Sprintf("viewer%d", i), room, false, 0})
		}
		for i := range lt.shape.publishers {
			members = append(members, member{fmt.Sprintf("speaker%d", i), room, true, i})
		}
	}
	lt.fresh = make([]*botReceiver, len(members))
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(members))
	var joins sync.WaitGroup
	var mu sync.Mutex
	for i, m := range members {
		joins.Add(1)
		sem <- struct{}{}
		go func() {
			defer joins.Done()
			defer func() { <-sem }()
			tok, err := lt.tokens(ctx, m.identity, m.room)
			if err != nil {
				errs <- err
				return
			}
			rcv := lt.g.newReceiver(0, false)
			lt.fresh[i] = rcv // read only after joins.Wait
			start := rcv.joined
			// Tracks may arrive before Join returns; their render sizes
			// are sent once the room is there.
			var (
				sizeMu  sync.Mutex
				joined  *sdk.Room
				pending []string
			)
			showAt := func(r *sdk.Room, id string) {
				if err := r.SetRenderSize(id, lt.shape.tileW, lt.shape.tileH, false); err != nil {
					lt.log.Error("render size", "err", err)
				}
			}
			opts := rcv.options(lt.log, 0)
			opts.OnTrack = func(t *sdk.RemoteTrack) {
				if t.Track.Kind() == webrtc.RTPCodecTypeVideo && lt.shape.tileW > 0 {
					sizeMu.Lock()
					if joined != nil {
						showAt(joined, t.Info.ID)
					} else {
						pending = append(pending, t.Info.ID)
					}
					sizeMu.Unlock()
				}
				rcv.receive(t)
			}
			r, err := sdk.Join(ctx, lt.base, tok, opts)
			if err != nil {
				errs <- fmt.Errorf("%s joins %s: %w", m.identity, m.room, err)
				return
			}
			var pausedHere sync.Map // track id -> paused for bandwidth
			r.OnVideoPaused(func(trackID string, paused bool, reason string) {
				was, _ := pausedHere.Load(trackID)
				now := paused && reason == protocol.PauseBandwidth
				pausedHere.Store(trackID, now)
				switch {
				case now && was != true:
					lt.stats.paused.Add(1)
				case !now && was == true:
					lt.stats.paused.Add(-1)
				}
			})
			sizeMu.Lock()
			joined = r
			for _, id := range pending {
				showAt(r, id)
			}
			sizeMu.Unlock()
			lt.stats.mu.Lock()
			lt.stats.joins = append(lt.stats.joins, time.Since(start))
			lt.stats.mu.Unlock()
			pctx, cancel := context.WithCancel(context.Background())
			mu.Lock()
			lt.rooms, lt.cancel = append(lt.rooms, r), append(lt.cancel, cancel)
			mu.Unlock()
			if m.publish {
				if err := lt.g.publish(pctx, &lt.wg, r, loadSpec(lt.fps, lt.kbps, m.seat, lt.shape.publishers)); err != nil {
					errs <- err
				}
			}
		}()
	}
	joins.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("load-test: %w", err)
	}
	lt.people += len(members)
	return nil
}

// stepResult is one step's measurements.
type stepResult struct {
	rooms, people                int
	srvCPU, srvMB, botCPU        float64 // CPU in cores
	sentPerSec, recvPerSec, mbps float64
	lossPct                      float64
	paused                       int64 // videos paused for a subscriber's bandwidth at the step's end
	joinP95, mediaP95            time.Duration
	latP50, latP95               float64 // ms
	ok                           bool
}

// measure waits for the new participants' first media (up to 20 s), then
// measures for d, printing a progress line every second.
func (lt *loadRun) measure(ctx context.Context, rooms int, d time.Duration) (*stepResult, error) {
	warm := time.Now().Add(20 * time.Second)
	for time.Now().Before(warm) && ctx.Err() == nil && lt.firstMediaCount() < len(lt.fresh) {
		fmt.Fprintf(os.Stderr, "\r  warming up: %d of %d new participants receive media   ", lt.firstMediaCount(), len(lt.fresh))
		time.Sleep(200 * time.Millisecond)
	}
	cpu0, _, drop0, _ := scrapeServer(lt.base)
	self0 := selfCPU()
	c0 := lt.g.counts()
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		time.Sleep(min(time.Second, d-time.Since(start)))
		el := time.Since(start).Seconds()
		fmt.Fprintf(os.Stderr, "\r  %d rooms, %d people: %.0f packets/s received, %.0f%% of the step   ", rooms, lt.people, float64(lt.g.delivered.Load()-c0.delivered)/el, 100*el/d.Seconds())
	}
	el := time.Since(start).Seconds()
	cpu1, rss, drop1, err := scrapeServer(lt.base)
	if err != nil {
		return nil, fmt.Errorf("load-test: server metrics: %w", err)
	}
	c := lt.g.counts().since(c0)
	res := &stepResult{rooms: rooms, people: lt.people, srvCPU: (cpu1 - cpu0) / el, srvMB: rss / 1e6, botCPU: (selfCPU() - self0) / el,
		sentPerSec: float64(c.published) / el, recvPerSec: float64(c.delivered) / el,
		mbps: float64(c.bytes) * 8 / el / 1e6, latP50: ms(c.latency.percentile(0.5)), latP95: ms(c.latency.percentile(0.95))}
	if exp := c.expected; exp > 0 {
		// The server's own drops (a subscriber's queue full) resynchronise
		// at a keyframe with no hole in the sequence numbers the bots see,
		// so they are counted from its metrics, as loss.
		dropped := drop1 - drop0
		res.lossPct = max(0, 100*(float64(c.missing)+dropped)/(float64(exp)+dropped))
		res.paused = lt.stats.paused.Load()
	}
	lt.stats.mu.Lock()
	res.joinP95 = durationPercentile(lt.stats.joins, 0.95)
	lt.stats.mu.Unlock()
	res.mediaP95 = lt.g.firstMediaP(0.95)
	if lt.firstMediaCount() < len(lt.fresh) {
		res.lossPct = 100 // participants that never got media: quality has dropped
	}
	return res, nil
}

// firstMediaCount is how many of the last step's participants got media.
func (lt *loadRun) firstMediaCount() int {
	n := 0
	for _, b := range lt.fresh {
		if b != nil && b.got.Load() {
			n++
		}
	}
	return n
}

func (lt *loadRun) stop() {
	for _, c := range lt.cancel {
		c()
	}
	lt.wg.Wait()
	var wg sync.WaitGroup
	for _, r := range lt.rooms {
		wg.Add(1)
		go func() { defer wg.Done(); r.Leave() }()
	}
	wg.Wait()
}

// scrapeServer reads the server's CPU seconds and resident memory from its
// Prometheus metrics.
// scrapeServer reads the server's CPU seconds, resident memory and the
// packets its media plane dropped (every reason summed).
func scrapeServer(base string) (cpu, rss, dropped float64, err error) {
	resp, err := http.Get(strings.TrimSuffix(base, "/") + "/metrics")
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "huddle_media_packets_dropped_total") {
			var d float64
			d, err = strconv.ParseFloat(val, 64)
			dropped += d
		}
		switch name {
		case "process_cpu_seconds_total":
			cpu, err = strconv.ParseFloat(val, 64)
			found++
		case "process_resident_memory_bytes":
			rss, err = strconv.ParseFloat(val, 64)
			found++
		}
		if err != nil {
			return 0, 0, 0, err
		}
	}
	if found < 2 {
		return 0, 0, 0, fmt.Errorf("%s/metrics has no process_cpu_seconds_total or process_resident_memory_bytes", base)
	}
	return cpu, rss, dropped, nil
}

// selfCPU is this process's CPU time (the bots), in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// childServer is `huddle serve` run by the load test.
type childServer struct {
	cmd  *exec.Cmd
	dir  string
	url  string
	done chan struct{}
}

var runningURL = regexp.MustCompile(`Huddle is running: open (http://\S+)`)

func startChildServer(ctx context.Context) (*childServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("load-test: find own binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "huddle-load")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "serve", "--http-addr", "127.0.0.1:0", "--media-udp-addr", "127.0.0.1:0",
		"--media-tcp-addr", "off", "--turn", "off", "--data-dir", dir, "--log-level", "error")
	cmd.Env = os.Environ()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("load-test: start server: %w", err)
	}
	c := &childServer{cmd: cmd, dir: dir, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := runningURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case c.url = <-found:
		return c, nil
	case <-c.done:
		err = errors.New("load-test: the server exited before it said where it runs")
	case <-time.After(20 * time.Second):
		err = errors.New("load-test: the server did not start within 20 s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.stop()
	return nil, err
}

func (c *childServer) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	_ = c.cmd.Wait()
	os.RemoveAll(c.dir)
}
