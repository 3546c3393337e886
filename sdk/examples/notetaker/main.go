// Command notetaker keeps minutes of who came and went in a shared
// document of the room, which everyone in the meeting sees update live.
//
//	go run ./sdk/examples/notetaker -token $TOKEN
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func main() {
	url := flag.String("url", "http://localhost:7880", "Huddle server")
	token := flag.String("token", "", "access token with the editDocs grant")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	events := make(chan string, 64) // callbacks must not block: hand events to main
	note := func(format string, p protocol.Participant) {
		select {
		case events <- fmt.Sprintf(format, time.Now().Format("15:04"), p.Name):
		default: // more than 64 behind: drop rather than stall the session
		}
	}
	room, err := sdk.Join(ctx, *url, *token, sdk.Options{
		OnParticipantJoined: func(p protocol.Participant) { note("%s %s joined\n", p) },
		OnParticipantLeft:   func(p protocol.Participant) { note("%s %s left\n", p) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer room.Leave()
	info, err := room.Docs().Create(ctx, "Minutes", "Minutes\n")
	if err != nil {
		log.Fatal(err)
	}
	doc, err := room.Docs().Open(ctx, info.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer doc.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case line := <-events:
			if err := doc.Insert(doc.Len(), line); err != nil {
				log.Print(err)
			}
		}
	}
}
