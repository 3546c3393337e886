// Package play publishes media files into a room at their real pace: Opus
// in Ogg, VP8/VP9/AV1 in IVF, H.264 as Annex B, and whole recordings made
// by package record (through their manifest). A stand-in participant for
// demos, tests and load.
//
//	room, err := sdk.Join(ctx, url, token, sdk.Options{})
//	err = play.Play(ctx, room, []play.File{{Path: "talk.ivf"}, {Path: "talk.ogg"}}, play.Options{Loop: true})
package play

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/record"
)

// File is one file to publish as one track.
type File struct {
	Path string
	// Source is the track's source ("camera", "microphone", "screen");
	// by default camera for video and microphone for audio.
	Source string
	// FrameInterval paces H.264 Annex B files, which carry no timing
	// [1/30 s]. Other formats carry their own.
	FrameInterval time.Duration
}

// Options tune Play.
type Options struct {
	// Loop plays the files again from their start when they end, until
	// ctx ends.
	Loop bool
}

// FromManifest lists the files of a recording made by package record, with
// their sources and, for H.264, the frame interval the manifest implies.
// identity, if not empty, keeps only that participant's files.
func FromManifest(dir, identity string) ([]File, error) {
	m, err := record.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	var out []File
	for _, t := range m.Tracks {
		if identity != "" && t.Identity != identity || t.Error != "" || t.Frames == 0 {
			continue
		}
		f := File{Path: filepath.Join(dir, t.File), Source: t.Source}
		if t.Frames > 1 {
			f.FrameInterval = time.Duration(t.DurationMS) * time.Millisecond / time.Duration(t.Frames-1)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("recording %s has no playable tracks", dir)
	}
	return out, nil
}

// Play publishes every file as a track of the room and sends their frames
// at the pace their timestamps say, all starting together. It returns when
// every file has ended (never with Loop), or ctx has; files that cannot be
// read are refused before anything is published.
func Play(ctx context.Context, room *sdk.Room, files []File, opts Options) error {
	if len(files) == 0 {
		return errors.New("play: no files given")
	}
	type track struct {
		file  File
		codec webrtc.RTPCodecCapability
		local *sdk.LocalTrack
	}
	tracks := make([]*track, 0, len(files))
	for _, f := range files {
		codec, err := codecOf(f.Path)
		if err != nil {
			return fmt.Errorf("play: %w", err)
		}
		r, err := openReader(f.Path, f.FrameInterval)
		if err != nil {
			return fmt.Errorf("play: %w", err)
		}
		r.Close()
		tracks = append(tracks, &track{file: f, codec: codec})
	}
	for _, t := range tracks {
		source := t.file.Source
		if source == "" {
			source = "camera"
			if t.codec.MimeType == webrtc.MimeTypeOpus {
				source = "microphone"
			}
		}
		local, err := room.PublishTrack(t.codec, source)
		if err != nil {
			return fmt.Errorf("play %s: %w", t.file.Path, err)
		}
		t.local = local
	}
	start := time.Now()
	errs := make([]error, len(tracks))
	var wg sync.WaitGroup
	for i, t := range tracks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = playTrack(ctx, t.local, t.file, start, opts.Loop)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// playTrack sends one file's frames, each when it is due after start; a
// loop goes on where the previous pass ended.
func playTrack(ctx context.Context, local *sdk.LocalTrack, f File, start time.Time, loop bool) error {
	offset := time.Duration(0)
	for {
		end, err := playOnce(ctx, local, f, start.Add(offset))
		if err != nil || !loop || ctx.Err() != nil {
			return err
		}
		offset += end
	}
}

// playOnce plays the file one time and returns how long it lasted (the
// last frame's time plus its duration).
func playOnce(ctx context.Context, local *sdk.LocalTrack, f File, start time.Time) (time.Duration, error) {
	r, err := openReader(f.Path, f.FrameInterval)
	if err != nil {
		return 0, fmt.Errorf("play: %w", err)
	}
	defer r.Close()
	cur, err := r.next()
	if err != nil {
		return 0, fmt.Errorf("play %s: %w", f.Path, err)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	last := 20 * time.Millisecond // duration of the previous frame
	for {
		nxt, err := r.next()
		switch {
		case errors.Is(err, io.EOF):
			nxt = frame{at: cur.at + last}
		case err != nil:
			return 0, fmt.Errorf("play %s: %w", f.Path, err)
		}
		if d := nxt.at - cur.at; d > 0 {
			last = d
		}
		timer.Reset(time.Until(start.Add(cur.at)))
	wait:
		for {
			select {
			case <-ctx.Done():
				return 0, nil
			case <-local.KeyframeRequests(): // a file cannot make keyframes; its own come when due
			case <-timer.C:
				break wait
			}
		}
		if err := local.WriteSample(media.Sample{Data: cur.data, Duration: last}); err != nil {
			return 0, fmt.Errorf("play %s: %w", f.Path, err)
		}
		if nxt.data == nil {
			return nxt.at, nil
		}
		cur = nxt
	}
}
