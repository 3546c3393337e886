package play_test

import (
	"context"
	"fmt"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/play"
)

// A stand-in participant: a bot that publishes a video and an audio file
// at their real pace (add Loop to play them until ctx ends).
func ExamplePlay() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	room, err := sdk.Join(ctx, serverURL(), tokenFor("player", "example-play"), sdk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer room.Leave()
	files := []play.File{{Path: "../testdata/hello.ivf"}, {Path: "../testdata/hello.ogg"}}
	if err := play.Play(ctx, room, files, play.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("played", len(files), "files")
	// Output: played 2 files
}
