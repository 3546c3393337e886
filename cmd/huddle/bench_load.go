package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
)

// benchBots brings the subscribers, then the publishers, of one bench run
// into one room of the server at base and starts publishing (the load
// itself is loadgen's). The returned stop ends the load and waits for it;
// call it even when benchBots fails.
func benchBots(ctx context.Context, g *loadgen, cfg benchConfig, base string) (stop func(), err error) {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	var rooms []*sdk.Room
	var wg sync.WaitGroup
	lctx, cancel := context.WithCancel(ctx)
	stop = func() {
		cancel()
		for _, r := range rooms {
			r.Leave()
		}
		wg.Wait()
	}
	room := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	// Video in frames of whole fragments: equal packets, each stamped.
	spec := publishSpec{fps: cfg.fps, video: []videoLayer{{frameBytes: max(1, cfg.pps/cfg.fps) * vp8Fragment}}}
	tracksPer := 1 // per publisher
	if cfg.audio {
		spec.audioBytes = 100
		tracksPer = 2
	}
	bot := func(name string, tracks int) (*sdk.Room, error) {
		tok, err := devToken(base, name, room)
		if err != nil {
			return nil, err
		}
		rcv := g.newReceiver(tracks, true)
		r, err := sdk.Join(ctx, base, tok, rcv.options(quiet, cfg.paceSlot()))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rooms = append(rooms, r)
		return r, nil
	}
	for i := range cfg.subscribers {
		if _, err := bot(fmt.Sprintf("sub%d", i), tracksPer*cfg.publishers); err != nil {
			return stop, err
		}
	}
	for i := range cfg.publishers {
		// Publishers receive each other's tracks, as in a meeting; they
		// count as receivers of those.
		r, err := bot(fmt.Sprintf("pub%d", i), tracksPer*(cfg.publishers-1))
		if err != nil {
			return stop, err
		}
		if err := g.publish(lctx, &wg, r, spec); err != nil {
			return stop, fmt.Errorf("publisher %d: %w", i, err)
		}
	}
	return stop, nil
}
