package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/sdk"
)

// videoLayer is one encoding a publisher sends: its frames' size, and the
// picture size its keyframes declare (what the server's allocator reads;
// 0: none declared).
type videoLayer struct {
	width, height int
	frameBytes    int
}

// publishSpec is what one publisher bot sends.
type publishSpec struct {
	fps int
	// video is one layer for a plain VP8 track, three (lowest first, as
	// sdk.SimulcastRIDs) for simulcast, none for no video.
	video []videoLayer
	// audioBytes is the size of an Opus packet every 20 ms; 0: no audio.
	audioBytes int
	// talking says whether the publisher talks at a moment; while it does
	// not, its audio is discontinuous (DTX). nil: it always talks.
	talking func(time.Time) bool
}

// dtxEvery is how often a silent publisher sends a comfort-noise packet,
// as browsers do with Opus DTX.
const dtxEvery = 400 * time.Millisecond

// publish publishes spec's tracks on r and sends them until ctx ends; the
// owner waits on wg. Each video layer answers keyframe requests with its
// next frame and, for simulcast, sends nothing while the server pauses it
// (dynacast), as an encoder would stop encoding it.
func (g *loadgen) publish(ctx context.Context, wg *sync.WaitGroup, r *sdk.Room, spec publishSpec) error {
	interval := time.Second / time.Duration(spec.fps)
	send := func(l videoLayer, write func(media.Sample) error, active func() bool, keyframes <-chan struct{}) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.sendVideo(ctx, interval, l, write, active, keyframes)
		}()
	}
	switch len(spec.video) {
	case 0:
	case 1:
		video, err := r.PublishTrack(sdk.VP8, "camera")
		if err != nil {
			return err
		}
		send(spec.video[0], video.WriteSample, nil, video.KeyframeRequests())
	case len(sdk.SimulcastRIDs):
		video, err := r.PublishSimulcast(sdk.VP8, "camera")
		if err != nil {
			return err
		}
		for layer, l := range spec.video {
			send(l, func(s media.Sample) error { return video.WriteSample(layer, s) },
				func() bool { return video.LayerActive(layer) }, video.KeyframeRequests(layer))
		}
	default:
		return fmt.Errorf("publish: %d video layers, want 0, 1 or %d", len(spec.video), len(sdk.SimulcastRIDs))
	}
	if spec.audioBytes <= 0 {
		return nil
	}
	mic, err := r.PublishTrack(sdk.Opus, "microphone")
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.sendAudio(ctx, mic, spec.audioBytes, spec.talking)
	}()
	return nil
}

// sendVideo sends synthetic VP8 frames of one layer every interval until
// ctx ends or a write fails. active (nil: always) says whether the server
// wants the layer now; a resumed layer starts at a keyframe.
func (g *loadgen) sendVideo(ctx context.Context, interval time.Duration, l videoLayer, write func(media.Sample) error, active func() bool, keyframes <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	frame := make([]byte, max(l.frameBytes, stampAt+stampLen))
	packets := vp8Packets(len(frame))
	key := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-keyframes:
			key = true // the next frame, as an encoder answers
			continue
		case <-tick.C:
		}
		if active != nil && !active() {
			key = true
			continue
		}
		frame[0] = 0x11 // VP8 frame tag: interframe
		if key {
			frame[0] = 0x10
			if l.width > 0 {
				// Keyframe start code, then 14-bit width and height.
				copy(frame[3:], []byte{0x9d, 0x01, 0x2a})
				binary.LittleEndian.PutUint16(frame[6:], uint16(l.width))
				binary.LittleEndian.PutUint16(frame[8:], uint16(l.height))
			}
		}
		key = false
		ns := g.now()
		stampFrame(frame, ns)
		if write(media.Sample{Data: frame, Duration: interval}) != nil {
			return
		}
		if g.inWindow(ns) {
			g.published.Add(packets)
		}
	}
}

// sendAudio sends synthetic Opus every 20 ms until ctx ends or a write
// fails: size-byte packets while talking (nil: always), a small
// comfort-noise packet every dtxEvery while not.
func (g *loadgen) sendAudio(ctx context.Context, t *sdk.LocalTrack, size int, talking func(time.Time) bool) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	frame := make([]byte, max(size, stampAt+stampLen))
	var lastSent time.Time
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-tick.C:
		}
		n := len(frame)
		if talking != nil && !talking(now) {
			if now.Sub(lastSent) < dtxEvery {
				continue
			}
			n = stampAt + stampLen // a comfort-noise frame is small
		}
		lastSent = now
		ns := g.now()
		stamp(frame, ns)
		if t.WriteSample(media.Sample{Data: frame[:n], Duration: 20 * time.Millisecond}) != nil {
			return
		}
		if g.inWindow(ns) {
			g.published.Add(1)
		}
	}
}
