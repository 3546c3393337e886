package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Two bots in one room: Alice publishes video, Bob is told about her
// track and reads it.
func ExampleJoin() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan string, 1)
	bob, err := sdk.Join(ctx, serverURL(), tokenFor("bob", "example-join"), sdk.Options{
		OnTrack: func(t *sdk.RemoteTrack) {
			select {
			case got <- fmt.Sprintf("bob receives %s (%s) from %s", t.Info.Kind, t.Info.Source, t.Participant.Identity):
			default:
			}
			buf := make([]byte, 1500)
			for { // read every track until it ends
				if _, _, err := t.Track.Read(buf); err != nil {
					return
				}
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Leave()

	alice, err := sdk.Join(ctx, serverURL(), tokenFor("alice", "example-join"), sdk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Leave()
	video, err := alice.PublishTrack(sdk.VP8, "camera")
	if err != nil {
		fmt.Println(err)
		return
	}
	frame := make([]byte, 900) // an encoder's output; here a VP8 keyframe tag
	frame[0], frame[3], frame[4], frame[5] = 0x10, 0x9d, 0x01, 0x2a
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	for {
		select {
		case line := <-got:
			fmt.Println(line)
			return
		case <-ctx.Done():
			fmt.Println("no video reached bob")
			return
		case <-tick.C:
			_ = video.WriteSample(media.Sample{Data: frame, Duration: time.Second / 30})
		}
	}
	// Output: bob receives video (camera) from alice
}

// Publishing a VP8 file frame by frame at its own pace (package play does
// this for Ogg, IVF and H.264 files, looping on request).
func ExampleRoom_PublishTrack() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	room, err := sdk.Join(ctx, serverURL(), tokenFor("player", "example-file"), sdk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer room.Leave()
	video, err := room.PublishTrack(sdk.VP8, "camera")
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := os.Open("testdata/hello.ivf")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	ivf, header, err := ivfreader.NewWith(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	// This file's time base is 1/90000: frames are 1800 ticks (20 ms) apart.
	interval := time.Second * time.Duration(header.TimebaseNumerator) * 1800 / time.Duration(header.TimebaseDenominator)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	frames := 0
	for {
		frame, _, err := ivf.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		<-tick.C
		if err := video.WriteSample(media.Sample{Data: frame, Duration: interval}); err != nil {
			fmt.Println(err)
			return
		}
		frames++
	}
	fmt.Printf("published %d frames of %dx%d %s\n", frames, header.Width, header.Height, header.FourCC)
	// Output: published 25 frames of 640x480 VP80
}

// A shared document: create it, open it, edit it, and wait until the
// server has made the edit durable.
func ExampleDocs() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	room, err := sdk.Join(ctx, serverURL(), tokenFor("scribe", "example-docs"), sdk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer room.Leave()
	info, err := room.Docs().Create(ctx, "notes", "agenda: ")
	if err != nil {
		fmt.Println(err)
		return
	}
	doc, err := room.Docs().Open(ctx, info.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer doc.Close()
	if err := doc.Insert(doc.Len(), "héllo 👋"); err != nil { // positions count code points
		fmt.Println(err)
		return
	}
	if err := doc.WaitSynced(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%q at revision %d\n", doc.Text(), doc.Rev())
	// Output: "agenda: héllo 👋" at revision 1
}

// Who is in the room, as they come and go.
func ExampleOptions_presence() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	joined := make(chan protocol.Participant, 1)
	host, err := sdk.Join(ctx, serverURL(), tokenFor("host", "example-presence"), sdk.Options{
		OnParticipantJoined: func(p protocol.Participant) { joined <- p },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer host.Leave()
	guest, err := sdk.Join(ctx, serverURL(), tokenFor("guest", "example-presence"), sdk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer guest.Leave()
	fmt.Println((<-joined).Identity, "joined")
	// Output: guest joined
}
