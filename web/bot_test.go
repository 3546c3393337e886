package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/huddle-rtc/huddle/sdk"
)

// devToken asks a dev-mode server for a token, as the page does.
func devToken(t *testing.T, serverURL, name, room string) string {
	t.Helper()
	res, err := http.Get(serverURL + "/api/dev/token?" + url.Values{"name": {name}, "room": {room}}.Encode())
	if err != nil {
		t.Fatalf("dev token: %v", err)
	}
	defer res.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 200 || body.Token == "" {
		t.Fatalf("dev token: HTTP %d, %v, %+v", res.StatusCode, err, body)
	}
	return body.Token
}

// echoBot is a Go SDK participant that publishes video: it re-encodes
// nothing, but republishes the frames it receives from the first remote
// video track as its own camera track. So it needs no video encoder and no
// media file, and its frames are real VP8 (or H.264) that a browser must
// decode.
type echoBot struct {
	room  *sdk.Room
	ready chan struct{} // closed once room is set: OnTrack can fire before sdk.Join returns

	mu       sync.Mutex
	from     string // participant whose video it receives
	fromName string
	received int // frames received
	sent     int // frames republished
	err      error
}

func (e *echoBot) counts() (from, fromName string, received, sent int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.from, e.fromName, e.received, e.sent, e.err
}

func (e *echoBot) onTrack(rt *sdk.RemoteTrack) {
	<-e.ready
	if rt.Track.Kind() != webrtc.RTPCodecTypeVideo {
		drain(rt.Track)
		return
	}
	e.mu.Lock()
	if e.from != "" { // echo only the first video
		e.mu.Unlock()
		drain(rt.Track)
		return
	}
	e.from, e.fromName = rt.Participant.ID, rt.Participant.Name
	e.mu.Unlock()

	var depacketizer rtp.Depacketizer
	var codec webrtc.RTPCodecCapability
	switch mime := rt.Track.Codec().MimeType; {
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		depacketizer, codec = &codecs.VP8Packet{}, sdk.VP8
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		depacketizer, codec = &codecs.H264Packet{}, sdk.H264
	default:
		e.fail(fmt.Errorf("echo bot cannot republish %s", mime))
		drain(rt.Track)
		return
	}
	out, err := e.room.PublishTrack(codec, "camera")
	if err != nil {
		e.fail(err)
		drain(rt.Track)
		return
	}
	// A subscriber that needs a keyframe of our track asks us; pass the
	// request on to the browser we copy from.
	go func() {
		for range out.KeyframeRequests() {
			pli := []rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(rt.Track.SSRC())}}
			if err := e.room.SubscriberPC().WriteRTCP(pli); err != nil {
				return
			}
		}
	}()
	sb := samplebuilder.New(64, depacketizer, rt.Track.Codec().ClockRate)
	for {
		pkt, _, err := rt.Track.ReadRTP()
		if err != nil {
			return
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			e.mu.Lock()
			e.received++
			e.mu.Unlock()
			if err := out.WriteSample(*s); err == nil {
				e.mu.Lock()
				e.sent++
				e.mu.Unlock()
			}
		}
	}
}

func (e *echoBot) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		e.err = err
	}
}

func drain(t *webrtc.TrackRemote) {
	buf := make([]byte, 1600)
	for {
		if _, _, err := t.Read(buf); err != nil {
			return
		}
	}
}

// botAndBrowserSeeEachOther: a person joins by typing into the page, a Go
// SDK bot joins the same room. The bot receives the person's video and
// publishes video of its own; the page must decode the bot's video, with a
// growing frame count, in a tile named after the bot.
func botAndBrowserSeeEachOther(t *testing.T, serverURL string) {
	alice := newBrowser(t, "alice")
	alice.dumpLogsOnFailure()
	aliceID := joinByTyping(t, alice, serverURL+"/", "Alice", "bots")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bot := &echoBot{ready: make(chan struct{})}
	botLog := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- bot log ---\n%s", botLog.String())
		}
	})
	room, err := sdk.Join(ctx, serverURL, devToken(t, serverURL, "Bot", "bots"), sdk.Options{
		OnTrack: bot.onTrack,
		Logger:  slog.New(slog.NewTextHandler(botLog, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("bot join: %v", err)
	}
	bot.room = room
	close(bot.ready)
	defer room.Leave()
	botID := room.Self().ID

	// The bot sees Alice: frames of her video arrive, labelled with her.
	var firstReceived int
	waitFor(t, 30*time.Second, "the bot to receive Alice's video", func() (bool, string) {
		from, name, received, sent, err := bot.counts()
		if err != nil {
			t.Fatalf("bot: %v", err)
		}
		firstReceived = received
		return from == aliceID && received > 0, fmt.Sprintf("from=%q name=%q received=%d sent=%d sub=%s pub=%s", from, name, received, sent, room.SubscriberPC().ConnectionState(), room.PublisherPC().ConnectionState())
	})
	if _, name, _, _, _ := bot.counts(); name != "Alice" {
		t.Errorf("bot got Alice's video labelled %q, want Alice", name)
	}
	waitFor(t, 15*time.Second, "the bot's frames from Alice to increase", func() (bool, string) {
		_, _, received, sent, _ := bot.counts()
		return received > firstReceived, fmt.Sprintf("received=%d (first %d) sent=%d", received, firstReceived, sent)
	})

	// Alice sees the bot.
	waitVideoFlowing(t, alice, botID, "Bot")
	waitTile(t, alice, botID, "Bot")
	alice.screenshot("browser-and-bot.png")
}
