package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// A publisher offer the server refuses (more sources in one offer than it
// allows) leaves the bot able to publish: the refused tracks are taken out
// and say why, and the next publish reaches the other participant.
func TestRefusedPublishOfferThenPublish(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Alice's OnParticipantJoined holds her read loop while the test
	// publishes, so no answer is applied meanwhile and the publishes fold
	// into one offer: with more than 16 tracks it carries more than 16
	// sources, whatever the timing.
	held, release := make(chan struct{}), make(chan struct{})
	refused := make(chan *protocol.Error, 4)
	a := join(t, ctx, srv, "alice", "refuse", sdk.Options{
		OnParticipantJoined: func(protocol.Participant) {
			close(held)
			<-release
		},
		OnError: func(e *protocol.Error) {
			if e.Ref == protocol.TypeOffer {
				refused <- e
			}
		},
	})
	bLog := newFrameLog()
	join(t, ctx, srv, "bob", "refuse", sdk.Options{OnTrack: bLog.onTrack})
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("alice never heard bob join")
	}
	// 16 audio tracks and a simulcast video: 17 sources (sfu.MaxSources+1).
	var tracks []*sdk.LocalTrack
	for i := range 16 {
		tr, err := a.PublishTrack(sdk.Opus, "microphone")
		if err != nil {
			close(release)
			t.Fatalf("publish %d: %v", i, err)
		}
		tracks = append(tracks, tr)
	}
	last, err := a.PublishSimulcast(sdk.VP8, "camera")
	close(release)
	if err != nil {
		t.Fatalf("publish simulcast: %v", err)
	}

	select {
	case e := <-refused:
		if e.Code != protocol.CodeLimit {
			t.Fatalf("offer refused with %s: %s, want %s", e.Code, e.Message, protocol.CodeLimit)
		}
	case <-ctx.Done():
		t.Fatal("the server did not refuse an offer with 17 sources")
	}
	// The last tracks travelled in the refused offer: they say so, and
	// their writes fail with the server's reason.
	var pe *protocol.Error
	if err := last.Err(); !errors.As(err, &pe) || pe.Code != protocol.CodeLimit || !strings.Contains(err.Error(), last.ID()) {
		t.Fatalf("refused simulcast track's Err = %v, want one naming %s and wrapping the limit error", err, last.ID())
	}
	if err := last.WriteSample(0, media.Sample{Data: vp8Frame(0, true), Duration: 20 * time.Millisecond}); err == nil {
		t.Error("WriteSample on a refused simulcast track returned nil")
	}
	if err := tracks[15].WriteSample(media.Sample{Data: opusFrame(0), Duration: 20 * time.Millisecond}); !errors.Is(err, tracks[15].Err()) || err == nil {
		t.Errorf("WriteSample on a refused audio track = %v, want its Err", err)
	}

	// The refused tracks' transceivers stay (Pion cannot remove one), and
	// the next tracks of their kinds take them over: refusals do not pile
	// up m-sections towards the server's bound.
	before := len(a.PublisherPC().GetTransceivers())
	publishMedia(ctx, t, a) // one audio track, one video track
	if got := len(a.PublisherPC().GetTransceivers()); got != before {
		t.Errorf("publisher has %d transceivers after publishing audio and video, want %d (both reusing refused ones)", got, before)
	}
	waitFor(t, "bob to get 50 video and audio frames after the refusal ("+describe(bLog)+")", 20*time.Second, func() bool {
		return bLog.count("video") >= 50 && bLog.count("audio") >= 50
	})
	bLog.checkInOrder(t, "video")
	bLog.checkInOrder(t, "audio")
	if st := a.PublisherPC().SignalingState().String(); st != "stable" {
		t.Errorf("alice's publisher is %s after the answer, want stable", st)
	}
}

// An unknown source is refused at the call, before anything reaches the
// server, and a later publish works.
func TestUnknownSourceRefusedAtCall(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	serverErrs := make(chan *protocol.Error, 4)
	a := join(t, ctx, srv, "alice", "source", sdk.Options{OnError: func(e *protocol.Error) { serverErrs <- e }})
	bLog := newFrameLog()
	join(t, ctx, srv, "bob", "source", sdk.Options{OnTrack: bLog.onTrack})

	tr, err := a.PublishTrack(sdk.VP8, "mybot")
	if err == nil || tr != nil {
		t.Fatalf("PublishTrack with source mybot = %v, %v; want an error", tr, err)
	}
	for _, want := range []string{`"mybot"`, "camera", "screen_audio"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := a.PublishSimulcast(sdk.VP8, "webcam"); err == nil {
		t.Error("PublishSimulcast with source webcam returned no error")
	}

	publishVideo(ctx, t, a, sdk.VP8, vp8Frame)
	waitFor(t, "bob to get 50 video frames ("+describe(bLog)+")", 20*time.Second, func() bool {
		return bLog.count("video") >= 50
	})
	select {
	case e := <-serverErrs:
		t.Errorf("the server got something to refuse: %v", fmt.Sprint(e))
	default:
	}
}
