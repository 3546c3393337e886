package record_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/play"
	"github.com/huddle-rtc/huddle/sdk/record"
)

// A recorder bot: every track in the room goes to a file of its own, and
// manifest.json says whose it was.
func ExampleRecorder() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, _ := os.MkdirTemp("", "recording")
	defer os.RemoveAll(dir)

	rec, err := record.New(dir, record.Options{Room: "example-record"})
	if err != nil {
		fmt.Println(err)
		return
	}
	room, err := sdk.Join(ctx, serverURL(), tokenFor("recorder", "example-record"), sdk.Options{OnTrack: rec.OnTrack})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Someone to record: a bot playing a short VP8 file in a loop. (A file
	// cannot make keyframes when asked; the loop brings its first one back.)
	alice, err := sdk.Join(ctx, serverURL(), tokenFor("alice", "example-record"), sdk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	playCtx, stopPlaying := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- play.Play(playCtx, alice, []play.File{{Path: "../testdata/hello.ivf"}}, play.Options{Loop: true})
	}()
	frames := func() int {
		if t := rec.Manifest().Tracks; len(t) > 0 {
			return t[0].Frames
		}
		return 0
	}
	for ctx.Err() == nil && frames() < 50 {
		time.Sleep(10 * time.Millisecond)
	}
	stopPlaying()
	<-done
	alice.Leave()
	room.Leave()
	if err := rec.Close(); err != nil { // finishes the files, writes the manifest
		fmt.Println(err)
		return
	}
	m, _ := record.ReadManifest(dir)
	for _, t := range m.Tracks {
		fmt.Println(t.File, t.Identity, t.Source, t.Codec)
	}
	// Output: alice-camera-1.ivf alice camera video/VP8
}
