package admin_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/internal/metricstest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func adminClient(srv *node.Node) *admin.Client {
	key, secret, _ := srv.DevKey()
	return &admin.Client{URL: srv.URL(), APIKey: key, APISecret: secret}
}

func has(ps []protocol.Participant, identity string) bool {
	for _, p := range ps {
		if p.Identity == identity {
			return true
		}
	}
	return false
}

// A removed participant is gone for everyone (the API, the others' view)
// and its session ends; the same token is then refused.
func TestRemovedParticipantIsGoneAndCannotRejoin(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api := adminClient(srv)
	aliceToken := sdktest.Token(t, srv, "alice", "r1", protocol.AllGrants())
	alice, err := sdk.Join(ctx, srv.URL(), aliceToken, sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Leave()
	bob := sdktest.Join(t, ctx, srv, "bob", "r1", sdk.Options{})
	sdktest.WaitFor(t, 10*time.Second, func() string { return "bob to see alice" }, func() bool { return has(bob.Participants(), "alice") })

	if err := api.RemoveParticipant(ctx, "r1", alice.Self().ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-alice.Done():
	case <-ctx.Done():
		t.Fatal("alice's session did not end")
	}
	if err := alice.Err(); err == nil || !strings.Contains(err.Error(), protocol.CodeRemoved) {
		t.Errorf("alice's session ended with %v, want %q", err, protocol.CodeRemoved)
	}
	sdktest.WaitFor(t, 10*time.Second, func() string { return "bob to see alice leave" }, func() bool { return !has(bob.Participants(), "alice") })
	room, err := api.GetRoom(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(room.Participants) != 1 || room.Participants[0].Identity != "bob" {
		t.Errorf("room after removal = %+v, want bob alone", room.Participants)
	}

	again, err := sdk.Join(ctx, srv.URL(), aliceToken, sdk.Options{NoAutoReconnect: true})
	if err == nil {
		again.Leave()
		t.Fatal("alice rejoined with the token of the removed participant")
	}
	if !strings.Contains(err.Error(), "revoked") {
		t.Errorf("rejoin refused with %v, want it to say the token was revoked", err)
	}
	if has(bob.Participants(), "alice") {
		t.Error("bob sees alice again")
	}
	if err := api.RemoveParticipant(ctx, "r1", "nobody"); !isAPIError(err, http.StatusNotFound, admin.CodeNotFound) {
		t.Errorf("removing nobody: %v, want a not_found error", err)
	}
}

func isAPIError(err error, status int, code string) bool {
	var ae *admin.APIError
	return errors.As(err, &ae) && ae.Status == status && ae.Code == code
}

// A track an admin mutes stops reaching its subscriber although its
// publisher keeps sending, and flows again when unmuted. Counts, not
// durations: the server reads 100 more packets of the track while the
// subscriber's count stands still.
func TestAdminMuteStopsForwarding(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api := adminClient(srv)
	frames := sdktest.NewFrameLog()
	sdktest.Join(t, ctx, srv, "viewer", "r2", sdk.Options{OnTrack: frames.OnTrack})
	talker := sdktest.Join(t, ctx, srv, "talker", "r2", sdk.Options{})
	pub, err := sdktest.Publish(talker, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	const opus = "audio/opus"
	sdktest.WaitFor(t, 20*time.Second, func() string { return "audio to reach the viewer" }, func() bool { return frames.Count(opus) > 20 })

	room, err := api.GetRoom(ctx, "r2")
	if err != nil {
		t.Fatal(err)
	}
	var trackID string
	for _, p := range room.Participants {
		if p.Identity == "talker" && len(p.Tracks) == 1 {
			trackID = p.Tracks[0].ID
		}
	}
	if trackID == "" {
		t.Fatalf("talker's track not listed: %+v", room)
	}
	received := func() uint64 {
		n, _ := srv.TrackPacketsReceived("r2", trackID)
		return n
	}
	waitPackets := func(more uint64) {
		target := received() + more
		sdktest.WaitFor(t, 20*time.Second, func() string { return "the server to read the talker's packets" }, func() bool { return received() >= target })
	}
	if err := api.MuteTrack(ctx, "r2", trackID, true); err != nil {
		t.Fatal(err)
	}
	waitPackets(25) // what was in flight at the mute arrives meanwhile
	before := frames.Count(opus)
	waitPackets(100)
	if after := frames.Count(opus); after != before {
		t.Errorf("viewer got %d frames of a muted track while the server read 100 packets", after-before)
	}
	room, _ = api.GetRoom(ctx, "r2")
	if !mutedIn(room, trackID) {
		t.Errorf("the API does not show the track muted: %+v", room)
	}
	if err := api.MuteTrack(ctx, "r2", trackID, false); err != nil {
		t.Fatal(err)
	}
	sdktest.WaitFor(t, 20*time.Second, func() string { return "audio to flow again after the unmute" }, func() bool { return frames.Count(opus) > before+20 })
	if n := metricstest.Scrape(t, srv.URL())["huddle_media_bytes_sent_total"]; n <= 0 {
		t.Errorf("huddle_media_bytes_sent_total = %v after forwarding audio", n)
	}
	if err := api.MuteTrack(ctx, "r2", "TR_nope", true); !isAPIError(err, http.StatusNotFound, admin.CodeNotFound) {
		t.Errorf("muting an unknown track: %v, want not_found", err)
	}
}

func mutedIn(r admin.Room, trackID string) bool {
	for _, p := range r.Participants {
		for _, tr := range p.Tracks {
			if tr.ID == trackID {
				return tr.Muted
			}
		}
	}
	return false
}

// A publisher cannot unmute a track an admin muted: it gets an error and
// the track stays muted for everyone.
func TestPublisherCannotUndoAdminMute(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan *protocol.Error, 16)
	talker := sdktest.Join(t, ctx, srv, "talker", "r4", sdk.Options{OnError: func(e *protocol.Error) {
		select {
		case errs <- e:
		default:
		}
	}})
	track, err := talker.PublishTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "microphone")
	if err != nil {
		t.Fatal(err)
	}
	var writer sync.WaitGroup
	defer writer.Wait()
	defer cancel()
	writer.Add(1)
	go func() { // the server sees a track once its packets arrive
		defer writer.Done()
		tick := time.NewTicker(sdktest.FrameInterval)
		defer tick.Stop()
		for n := uint32(0); ctx.Err() == nil; n++ {
			<-tick.C
			_ = track.WriteSample(media.Sample{Data: sdktest.OpusFrame(n), Duration: sdktest.FrameInterval})
		}
	}()
	api := adminClient(srv)
	var trackID string
	sdktest.WaitFor(t, 20*time.Second, func() string { return "the track to be published" }, func() bool {
		room, _ := api.GetRoom(ctx, "r4")
		for _, p := range room.Participants {
			for _, tr := range p.Tracks {
				trackID = tr.ID
			}
		}
		return trackID != ""
	})
	if err := api.MuteTrack(ctx, "r4", trackID, true); err != nil {
		t.Fatal(err)
	}
	if err := talker.SetMuted(track, false); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-errs:
		if !strings.Contains(e.Message, "admin") {
			t.Errorf("error %+v, want one saying an admin muted it", e)
		}
	case <-ctx.Done():
		t.Fatal("no error for unmuting an admin-muted track")
	}
	room, _ := api.GetRoom(ctx, "r4")
	if !mutedIn(room, trackID) {
		t.Error("the track is no longer muted")
	}
}
