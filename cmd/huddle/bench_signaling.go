package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// benchSignaling measures what idle joined participants cost the server:
// `huddle bench signaling --conns N`. The server runs in this process (so
// its heap, goroutines and CPU time are measured alone, after a GC), and
// the N participants in a child process (this binary, in client mode):
// plain WebSocket clients, no media, spread over rooms, each answering
// pings and sending a presence heartbeat.
func benchSignaling(args []string) error {
	f := newEnvFlags("bench signaling")
	conns := f.Int("conns", 1000, "participants to join and hold")
	perRoom := f.Int("per-room", 50, "participants per room")
	hold := f.Duration("hold", 10*time.Second, "how long to hold them idle while measuring CPU")
	heartbeat := f.Duration("heartbeat", 20*time.Second, "presence heartbeat interval per participant")
	workers := f.Int("workers", 32, "joins in flight at once")
	client := f.String("client-of", "", "internal: run the clients against this WebSocket URL")
	key := f.String("client-key", "", "internal: API key for the client tokens")
	secret := f.String("client-secret", "", "internal: API secret for the client tokens")
	if err := f.parse(args); err != nil {
		return err
	}
	if *client != "" {
		return benchClients(*client, *key, *secret, *conns, *perRoom, *workers, *heartbeat)
	}
	if *conns <= 0 || *perRoom <= 0 {
		return errors.New("--conns and --per-room must be positive")
	}

	dir, err := os.MkdirTemp("", "huddle-bench-signaling")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := node.New(node.Config{
		HTTPAddr: "127.0.0.1:0", MediaUDPAddr: "127.0.0.1:0", MediaTCPAddr: "off", DataDir: dir, Logger: quiet,
		Signaling: signaling.Config{JoinRate: -1, MaxParticipants: *perRoom},
	})
	if err != nil {
		return err
	}
	if err := srv.Start(context.Background()); err != nil {
		return err
	}
	defer srv.Close()
	k, s, _ := srv.DevKey()
	base := measureSelf()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "bench", "signaling", "--client-of", "ws"+strings.TrimPrefix(srv.URL(), "http")+"/ws",
		"--client-key", k, "--client-secret", s, "--conns", fmt.Sprint(*conns), "--per-room", fmt.Sprint(*perRoom),
		"--workers", fmt.Sprint(*workers), "--heartbeat", heartbeat.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	var lat joinLatency
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "JOINED "); ok {
			if err := json.Unmarshal([]byte(line), &lat); err != nil {
				return fmt.Errorf("client report: %w", err)
			}
			break
		}
	}
	if lat.N == 0 {
		return errors.New("the clients did not join (see their errors above)")
	}
	if err := waitParticipants(srv.URL(), *conns, time.Minute); err != nil {
		return err
	}
	r := signalingReport{conns: *conns, perRoom: *perRoom, workers: *workers, hold: *hold, heartbeat: *heartbeat, base: base, lat: lat}
	r.joined = measureSelf()
	cpu0, wall0 := cpuTime(), time.Now()
	time.Sleep(*hold)
	r.idleCPU, r.wall = cpuTime()-cpu0, time.Since(wall0)
	r.after = measureSelf()
	r.print()
	return nil
}

type signalingReport struct {
	conns, perRoom, workers int
	hold, heartbeat         time.Duration
	base, joined, after     selfCost
	lat                     joinLatency
	idleCPU, wall           time.Duration
}

func (r signalingReport) print() {
	n := float64(r.conns)
	fmt.Printf("huddle bench signaling: %d participants in %d rooms of %d, held idle %s (heartbeat %s)\n",
		r.conns, (r.conns+r.perRoom-1)/r.perRoom, r.perRoom, r.hold, r.heartbeat)
	fmt.Printf("  memory per participant:     %.1f KB (heap+stacks after GC; %.1f KB after the hold)\n",
		float64(r.joined.bytes-r.base.bytes)/n/1024, float64(r.after.bytes-r.base.bytes)/n/1024)
	fmt.Printf("  goroutines per participant: %.2f (%d total, %d before)\n", float64(r.joined.goroutines-r.base.goroutines)/n, r.joined.goroutines, r.base.goroutines)
	fmt.Printf("  join latency:               p50 %s  p99 %s  max %s (%d joins, %d at once)\n",
		r.lat.P50.Round(time.Microsecond), r.lat.P99.Round(time.Microsecond), r.lat.Max.Round(time.Microsecond), r.lat.N, r.workers)
	fmt.Printf("  server idle CPU:            %.2f%% of one core (%s over %s, getrusage)\n",
		100*r.idleCPU.Seconds()/r.wall.Seconds(), r.idleCPU.Round(time.Millisecond), r.wall.Round(time.Millisecond))
}

type selfCost struct {
	bytes      int64
	goroutines int
}

func measureSelf() selfCost {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return selfCost{bytes: int64(ms.HeapInuse + ms.StackInuse), goroutines: runtime.NumGoroutine()}
}

func waitParticipants(base string, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var h struct{ Participants int }
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if h.Participants == n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d participants joined", h.Participants, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type joinLatency struct {
	N             int
	P50, P99, Max time.Duration
}

// benchClients is the client side: it joins n participants with a few
// joins in flight, reports the join latencies on stdout, then holds them
// (answering pings, sending heartbeats) until stdin closes.
func benchClients(url, key, secret string, n, perRoom, workers int, heartbeat time.Duration) error {
	type result struct {
		ws  *websocket.Conn
		d   time.Duration
		err error
	}
	jobs := make(chan int)
	results := make(chan result, n)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ws, d, err := benchJoin(url, key, secret, i, perRoom)
				results <- result{ws, d, err}
			}
		}()
	}
	go func() {
		for i := 0; i < n; i++ {
			jobs <- i
		}
		close(jobs)
	}()
	wg.Wait()
	close(results)
	var lats []time.Duration
	var open []*websocket.Conn
	var firstErr error
	for r := range results {
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		lats = append(lats, r.d)
		open = append(open, r.ws)
	}
	if firstErr != nil {
		return fmt.Errorf("%d of %d joins failed; first: %w", n-len(lats), n, firstErr)
	}
	slices.Sort(lats)
	pct := func(p float64) time.Duration { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	rep, _ := json.Marshal(joinLatency{N: len(lats), P50: pct(0.50), P99: pct(0.99), Max: lats[len(lats)-1]})
	fmt.Printf("JOINED %s\n", rep)
	holdClients(open, heartbeat)
	return nil
}

// holdClients keeps the connections idle (answering pings, sending a
// heartbeat) until stdin closes, then closes them.
func holdClients(open []*websocket.Conn, heartbeat time.Duration) {
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for i, ws := range open {
		readers.Add(1)
		go func() { // answers pings (in ReadMessage) and drops room events
			defer readers.Done()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		go func() { // presence heartbeat, spread over the interval
			t := time.NewTimer(heartbeat * time.Duration(i%100) / 100)
			defer t.Stop()
			beat, _ := protocol.Encode(&protocol.SetPresence{State: protocol.PresenceOnline})
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					_ = ws.WriteMessage(websocket.TextMessage, beat)
					t.Reset(heartbeat)
				}
			}
		}()
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	close(stop)
	for _, ws := range open {
		ws.Close()
	}
	readers.Wait()
}

func benchJoin(url, key, secret string, i, perRoom int) (*websocket.Conn, time.Duration, error) {
	tok, err := auth.Mint(key, secret, auth.Claims{Identity: fmt.Sprint("bench-", i), Name: fmt.Sprint("Bench ", i),
		Room: fmt.Sprint("bench-room-", i/perRoom), Grants: protocol.AllGrants()}, time.Hour)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		return nil, 0, err
	}
	data, _ := protocol.Encode(&protocol.Join{Version: protocol.Version, Token: tok})
	if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
		ws.Close()
		return nil, 0, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return nil, 0, err
		}
		if strings.HasPrefix(string(msg), `{"type":"joined"`) {
			break
		}
		if strings.HasPrefix(string(msg), `{"type":"error"`) {
			ws.Close()
			return nil, 0, fmt.Errorf("join refused: %s", msg)
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws, time.Since(start), nil
}
