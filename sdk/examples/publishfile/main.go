// Command publishfile publishes media files into a room at their real
// pace: .ivf (VP8, VP9, AV1), .ogg (Opus) or .h264 (Annex B).
//
//	go run ./sdk/examples/publishfile -token $TOKEN -loop video.ivf audio.ogg
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"os"
	"os/signal"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/play"
)

func main() {
	url := flag.String("url", "http://localhost:7880", "Huddle server")
	token := flag.String("token", "", "access token with the publish grant")
	loop := flag.Bool("loop", false, "play again from the start until Ctrl-C")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("give one or more files to publish")
	}
	var files []play.File
	for _, path := range flag.Args() {
		files = append(files, play.File{Path: path})
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	room, err := sdk.Join(ctx, *url, *token, sdk.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer room.Leave()
	if err := play.Play(ctx, room, files, play.Options{Loop: *loop}); err != nil && !errors.Is(err, context.Canceled) {
		log.Print(err)
	}
}
