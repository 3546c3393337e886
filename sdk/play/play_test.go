package play

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/record"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
)

func joinBot(t *testing.T, ctx context.Context, srv *node.Node, identity, room string, opts sdk.Options) *sdk.Room {
	t.Helper()
	return sdktest.Join(t, ctx, srv, identity, room, opts)
}

// recordCall records a VP8+Opus publisher and an H.264 publisher for at
// least frames frames each and returns the recording's directory.
func recordCall(t *testing.T, ctx context.Context, srv *node.Node, frames int) string {
	t.Helper()
	dir := t.TempDir()
	rec, err := record.New(dir, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recRoom := joinBot(t, ctx, srv, "recorder", "live", sdk.Options{OnTrack: rec.OnTrack})
	alice := joinBot(t, ctx, srv, "alice", "live", sdk.Options{})
	bob := joinBot(t, ctx, srv, "bob", "live", sdk.Options{})
	for _, p := range []struct {
		room   *sdk.Room
		codecs []webrtc.RTPCodecCapability
	}{{alice, []webrtc.RTPCodecCapability{sdk.VP8, sdk.Opus}}, {bob, []webrtc.RTPCodecCapability{sdk.H264}}} {
		pub, err := sdktest.Publish(p.room, p.codecs...)
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Stop()
	}
	sdktest.WaitFor(t, 30*time.Second, func() string { return fmt.Sprintf("%+v", rec.Manifest().Tracks) }, func() bool {
		m := rec.Manifest()
		if len(m.Tracks) < 3 {
			return false
		}
		for _, tr := range m.Tracks {
			if tr.Frames < frames {
				return false
			}
		}
		return true
	})
	recRoom.Leave()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fileCounters reads a file's frame counters.
func fileCounters(t *testing.T, f File) (string, []uint32) {
	t.Helper()
	codec, err := codecOf(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := openReader(f.Path, f.FrameInterval)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []uint32
	for {
		fr, err := r.next()
		if errors.Is(err, io.EOF) {
			return strings.ToLower(codec.MimeType), out
		}
		if err != nil {
			t.Fatal(err)
		}
		n, ok := sdktest.Counter(codec.MimeType, fr.data)
		if !ok {
			t.Fatalf("%s: frame without counter", f.Path)
		}
		out = append(out, n)
	}
}

// A recording played (looping) into another room reaches a bot there with
// the recorded frame counters: a whole pass in order, and passes that
// follow each other with nothing lost or repeated in between.
func TestPlayRecordingIntoAnotherRoom(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := recordCall(t, ctx, srv, 75)
	files, err := FromManifest(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("manifest lists %d files, want 3", len(files))
	}
	want := map[string][]uint32{}
	for _, f := range files {
		codec, c := fileCounters(t, f)
		want[codec] = c
	}

	got := sdktest.NewFrameLog()
	joinBot(t, ctx, srv, "viewer", "replay", sdk.Options{OnTrack: got.OnTrack})
	player := joinBot(t, ctx, srv, "player", "replay", sdk.Options{})
	playCtx, stopPlay := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Play(playCtx, player, files, Options{Loop: true}) }()
	defer func() {
		stopPlay()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("play: %v", err)
		}
	}()

	for codec, w := range want {
		sdktest.WaitFor(t, 60*time.Second, func() string { return codec + " whole pass (" + got.String() + ")" }, func() bool {
			return containsRun(got.Counters(codec), w)
		})
		// Every frame follows the one before it in the file (the last is
		// followed by the first): nothing lost, repeated or reordered.
		at := make(map[uint32]int, len(w))
		for i, n := range w {
			at[n] = i
		}
		c := got.Counters(codec)
		for i := 1; i < len(c); i++ {
			if at[c[i]] != (at[c[i-1]]+1)%len(w) {
				t.Fatalf("%s: frame %d follows %d (file holds %d..%d)", codec, c[i], c[i-1], w[0], w[len(w)-1])
			}
		}
	}
}

func containsRun(have, run []uint32) bool {
	for i := range have {
		if len(have)-i < len(run) {
			return false
		}
		if have[i] == run[0] && slices.Equal(have[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

// Files that cannot be played are refused before anything is published,
// with a message that says what would work.
func TestPlayRefusesUnknownFiles(t *testing.T) {
	err := Play(context.Background(), nil, []File{{Path: "talk.mp4"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "want .ogg") {
		t.Fatalf("play of an .mp4: %v", err)
	}
	if err := Play(context.Background(), nil, nil, Options{}); err == nil {
		t.Fatal("play of nothing succeeded")
	}
}
