package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling"
)

// bench joins publishers and subscribers (SDK bots) to one room and reports
// what the server forwarded and what it cost. Without --url it starts a
// server in this process on loopback; with --url it measures that server
// (dev mode: tokens from /api/dev/token) and reads its CPU time from
// /metrics, so run `huddle serve` separately for server-only numbers.
func bench(args []string) error {
	f := newEnvFlags("bench")
	target := f.String("url", "", "server to measure (default: start one in-process on loopback)")
	pubs := f.Int("publishers", 1, "bots publishing video and audio")
	subs := f.Int("subscribers", 10, "bots only receiving")
	dur := f.Duration("duration", 10*time.Second, "how long to measure, after everyone receives")
	fps := f.Int("fps", 30, "video frames per second per publisher")
	kbps := f.Int("video-kbps", 1000, "video bitrate per publisher")
	if err := f.parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur+2*time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	base := *target
	if base == "" {
		dir, err := os.MkdirTemp("", "huddle-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := signaling.New(signaling.Config{HTTPAddr: "127.0.0.1:0", MediaUDPAddr: "127.0.0.1:0", MediaTCPAddr: "off", DataDir: dir, Logger: quiet})
		if err != nil {
			return err
		}
		if err := srv.Start(ctx); err != nil {
			return err
		}
		defer srv.Close()
		base = srv.URL()
	}
	room := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	var received, receivedBytes, gaps atomic.Int64
	var joined []*sdk.Room
	defer func() {
		for _, r := range joined {
			r.Leave()
		}
	}()
	for i := range *subs {
		tok, err := devToken(base, fmt.Sprintf("sub%d", i), room)
		if err != nil {
			return err
		}
		r, err := sdk.Join(ctx, base, tok, sdk.Options{Logger: quiet, OnTrack: func(t *sdk.RemoteTrack) {
			count(t, &received, &receivedBytes, &gaps)
		}})
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		joined = append(joined, r)
	}
	var sent atomic.Int64
	for i := range *pubs {
		tok, err := devToken(base, fmt.Sprintf("pub%d", i), room)
		if err != nil {
			return err
		}
		r, err := sdk.Join(ctx, base, tok, sdk.Options{Logger: quiet})
		if err != nil {
			return fmt.Errorf("publisher %d: %w", i, err)
		}
		joined = append(joined, r)
		if err := publishSynthetic(ctx, r, *fps, *kbps, &sent); err != nil {
			return err
		}
	}
	// Warm up until every subscriber gets media, then measure.
	want := int64(*subs * *pubs * 2 * 50)
	for received.Load() < want {
		if ctx.Err() != nil {
			return fmt.Errorf("warm-up: subscribers got %d packets, want %d", received.Load(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cpu0, _ := serverCPU(base)
	r0, b0, s0, g0 := received.Load(), receivedBytes.Load(), sent.Load(), gaps.Load()
	start := time.Now()
	time.Sleep(*dur)
	el := time.Since(start).Seconds()
	cpu1, cpuErr := serverCPU(base)
	r1, b1, s1, g1 := received.Load(), receivedBytes.Load(), sent.Load(), gaps.Load()

	fmt.Printf("huddle bench: %d publishers (VP8 %d kbps @ %d fps + Opus), %d subscribers, %.1fs on %s\n", *pubs, *kbps, *fps, *subs, el, base)
	fmt.Printf("  published   %10.0f packets/s\n", float64(s1-s0)/el)
	fmt.Printf("  delivered   %10.0f packets/s  (%.1f Mbit/s)\n", float64(r1-r0)/el, float64(b1-b0)*8/el/1e6)
	fmt.Printf("  expected    %10.0f packets/s  (published x subscribers)\n", float64(s1-s0)/el*float64(*subs))
	fmt.Printf("  sequence gaps seen by subscribers: %d\n", g1-g0)
	if cpuErr == nil && cpu1 >= cpu0 {
		label := "server"
		if *target == "" {
			label = "process (server and bots)"
		}
		fmt.Printf("  %s CPU: %.1f%% of one core; %.2f us per delivered packet\n", label, 100*(cpu1-cpu0)/el, 1e6*(cpu1-cpu0)/float64(r1-r0))
	}
	return nil
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

// serverCPU reads process_cpu_seconds_total from the server's metrics.
func serverCPU(base string) (float64, error) {
	resp, err := http.Get(strings.TrimSuffix(base, "/") + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no process_cpu_seconds_total at %s/metrics", base)
}

func publishSynthetic(ctx context.Context, r *sdk.Room, fps, kbps int, sent *atomic.Int64) error {
	video, err := r.PublishTrack(sdk.VP8, "camera")
	if err != nil {
		return err
	}
	audio, err := r.PublishTrack(sdk.Opus, "microphone")
	if err != nil {
		return err
	}
	frameBytes := kbps * 1000 / 8 / fps
	packetsPerFrame := int64(max(1, (frameBytes+1099)/1100))
	go func() {
		tick := time.NewTicker(time.Second / time.Duration(fps))
		defer tick.Stop()
		frame := make([]byte, frameBytes)
		key := true
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-video.KeyframeRequests():
				key = true
			case <-tick.C:
			}
			frame[0] = 0x11
			if key {
				frame[0] = 0x10
			}
			key = false
			binary.BigEndian.PutUint32(frame[10:], uint32(n))
			if video.WriteSample(media.Sample{Data: frame, Duration: time.Second / time.Duration(fps)}) != nil {
				return
			}
			sent.Add(packetsPerFrame)
		}
	}()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		frame := make([]byte, 80)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if audio.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond}) != nil {
				return
			}
			sent.Add(1)
		}
	}()
	return nil
}

// count reads a track and counts packets, bytes and sequence gaps.
func count(t *sdk.RemoteTrack, packets, bytes, gaps *atomic.Int64) {
	var mu sync.Mutex
	var last uint16
	started := false
	buf := make([]byte, 1600)
	for {
		n, _, err := t.Track.Read(buf)
		if err != nil {
			return
		}
		if n < 12 {
			continue
		}
		seq := binary.BigEndian.Uint16(buf[2:4])
		mu.Lock()
		if started && seq != last+1 && int16(seq-last) > 0 {
			gaps.Add(1)
		}
		if !started || int16(seq-last) > 0 {
			last = seq
		}
		started = true
		mu.Unlock()
		packets.Add(1)
		bytes.Add(int64(n))
	}
}
