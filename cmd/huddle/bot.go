package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/play"
	"github.com/huddle-rtc/huddle/sdk/record"
)

// bot runs one of the SDK's ready-made bots: `huddle bot record` and
// `huddle bot play`.
func bot(args []string) error {
	if len(args) == 0 {
		return errors.New("bot: which one? `huddle bot record` or `huddle bot play` (add -h for flags)")
	}
	switch args[0] {
	case "record":
		return botRecord(args[1:])
	case "play":
		return botPlay(args[1:])
	}
	return fmt.Errorf("bot: unknown bot %q (want record or play)", args[0])
}

// botSession is the flags every bot has: where to join and as whom.
type botSession struct {
	url, token, room, name *string
}

func addSessionFlags(f envFlags, defaultName string) botSession {
	return botSession{
		url:   f.String("url", "http://localhost:7880", "server to join"),
		token: f.String("token", "", "access token (see `huddle token`); without one, --room gets a token from a dev-mode server on this machine"),
		room:  f.String("room", "", "room to join with a dev-mode token (ignored with --token)"),
		name:  f.String("name", defaultName, "identity of the bot, for a dev-mode token"),
	}
}

// join joins the room, getting a dev token first when none was given.
func (s botSession) join(ctx context.Context, opts sdk.Options) (*sdk.Room, error) {
	tok := *s.token
	if tok == "" {
		if *s.room == "" {
			return nil, errors.New("give --token, or --room to get a token from a dev-mode server")
		}
		var err error
		if tok, err = sdk.DevToken(ctx, *s.url, *s.name, *s.room); err != nil {
			return nil, err
		}
	}
	return sdk.Join(ctx, *s.url, tok, opts)
}

// untilInterrupted is a context that ends on SIGINT or SIGTERM, or after d
// when d > 0.
func untilInterrupted(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if d <= 0 {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, func() { cancel(); stop() }
}

func botRecord(args []string) error {
	f := newEnvFlags("bot record")
	sess := addSessionFlags(f, "recorder")
	out := f.String("out", "", "directory for the files and manifest.json (must not hold a recording yet)")
	dur := f.Duration("duration", 0, "stop after this long (default: on SIGINT or SIGTERM)")
	if err := f.parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("bot record: --out DIR is required")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rec, err := record.New(*out, record.Options{Logger: log, Room: *sess.room})
	if err != nil {
		return fmt.Errorf("bot record: %w", err)
	}
	ctx, stop := untilInterrupted(*dur)
	defer stop()
	room, err := sess.join(ctx, sdk.Options{Logger: log, OnTrack: rec.OnTrack})
	if err != nil {
		_ = rec.Close()
		return fmt.Errorf("bot record: %w", err)
	}
	log.Info("recording; stop with Ctrl-C", "out", *out, "participant", room.Self().ID)
	select {
	case <-ctx.Done():
	case <-room.Done():
		log.Warn("session ended", "err", room.Err())
	}
	_ = room.Leave()
	if err := rec.Close(); err != nil {
		return fmt.Errorf("bot record: %w", err)
	}
	m := rec.Manifest()
	log.Info("recording finished", "files", len(m.Tracks), "manifest", *out+"/"+record.ManifestFile)
	return nil
}

func botPlay(args []string) error {
	f := newEnvFlags("bot play")
	sess := addSessionFlags(f, "player")
	files := f.String("file", "", "comma-separated .ogg (Opus), .ivf (VP8/VP9/AV1) or .h264 (Annex B) files, one track each")
	recording := f.String("recording", "", "a directory made by `huddle bot record`: play its tracks")
	identity := f.String("identity", "", "with --recording: only this participant's tracks")
	fps := f.Int("fps", 30, "frame rate of .h264 files given with --file (Annex B has no timing)")
	loop := f.FlagSet.Bool("loop", false, "start again at the end, until interrupted")
	if err := f.parse(args); err != nil {
		return err
	}
	var tracks []play.File
	for _, p := range list(*files) {
		tracks = append(tracks, play.File{Path: p, FrameInterval: time.Second / time.Duration(max(1, *fps))})
	}
	if *recording != "" {
		more, err := play.FromManifest(*recording, *identity)
		if err != nil {
			return fmt.Errorf("bot play: %w", err)
		}
		tracks = append(tracks, more...)
	}
	if len(tracks) == 0 {
		return errors.New("bot play: give --file or --recording")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := untilInterrupted(0)
	defer stop()
	room, err := sess.join(ctx, sdk.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("bot play: %w", err)
	}
	defer room.Leave()
	log.Info("playing; stop with Ctrl-C", "tracks", len(tracks), "loop", *loop, "participant", room.Self().ID)
	err = play.Play(ctx, room, tracks, play.Options{Loop: *loop})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("bot play: %w", err)
	}
	return nil
}
