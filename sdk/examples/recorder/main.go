// Command recorder joins a room and writes every track to a file until
// Ctrl-C: the smallest useful bot, and what `huddle bot record` runs.
//
//	go run ./sdk/examples/recorder -url http://localhost:7880 -token $TOKEN -out rec
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/record"
)

func main() {
	url := flag.String("url", "http://localhost:7880", "Huddle server")
	token := flag.String("token", "", "access token (huddle token ...)")
	out := flag.String("out", "recording", "directory for the files")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rec, err := record.New(*out, record.Options{})
	if err != nil {
		log.Fatal(err)
	}
	room, err := sdk.Join(ctx, *url, *token, sdk.Options{OnTrack: rec.OnTrack})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("recording into %s; Ctrl-C to stop", *out)
	select {
	case <-ctx.Done():
	case <-room.Done():
	}
	room.Leave()
	if err := rec.Close(); err != nil {
		log.Fatal(err)
	}
	log.Printf("%d files, see %s/%s", len(rec.Manifest().Tracks), *out, record.ManifestFile)
}
