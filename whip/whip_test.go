package whip_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
	"github.com/huddle-rtc/huddle/whip"
)

// sendFrames publishes counter frames (H.264, VP8 or Opus, by the track's
// codec) on a plain pion track every 20 ms until ctx ends, with a keyframe
// first and whenever the sender gets a PLI.
func sendFrames(ctx context.Context, wg *sync.WaitGroup, track *webrtc.TrackLocalStaticSample, sender *webrtc.RTPSender) {
	keyframes := make(chan struct{}, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := sender.Read(buf)
			if err != nil {
				return
			}
			pkts, _ := rtcp.Unmarshal(buf[:n])
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					select {
					case keyframes <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(sdktest.FrameInterval)
		defer tick.Stop()
		key := true
		for n := uint32(0); ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-keyframes:
				key = true
			case <-tick.C:
			}
			frame := sdktest.OpusFrame(n)
			switch track.Codec().MimeType {
			case webrtc.MimeTypeVP8:
				frame = sdktest.VP8Frame(n, key)
			case webrtc.MimeTypeH264:
				frame = sdktest.H264Frame(n, key)
			}
			if track.WriteSample(media.Sample{Data: frame, Duration: sdktest.FrameInterval}) != nil {
				return
			}
			key = false
		}
	}()
}

// An encoder publishing H.264 and Opus over WHIP, as OBS does (a client
// written from RFC 9725 with plain pion, trickling its candidates with
// PATCH), reaches an SDK bot in the room, in order; it is a participant
// under its token's identity until DELETE ends it.
func TestWHIPPublishReachesBot(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := sdktest.NewFrameLog()
	left := make(chan protocol.Participant, 4)
	viewer, err := sdk.Join(ctx, srv.URL(), sdktest.Token(t, srv, "viewer", "stream", protocol.AllGrants()), sdk.Options{
		OnTrack: got.OnTrack, OnParticipantLeft: func(p protocol.Participant) { left <- p },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Leave()

	c := newClient(t, srv.URL(), "/whip", sdktest.Token(t, srv, "obs", "stream", protocol.Grants{Publish: true}))
	sendCtx, stopSending := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopSending(); wg.Wait() }()
	var start []func()
	for _, codec := range []webrtc.RTPCodecCapability{sdk.H264, sdk.Opus} {
		track, err := webrtc.NewTrackLocalStaticSample(codec, codec.MimeType, "obs")
		if err != nil {
			t.Fatal(err)
		}
		tr, err := c.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		start = append(start, func() { sendFrames(sendCtx, &wg, track, tr.Sender()) })
	}
	c.connect()
	for _, s := range start {
		s()
	}

	sdktest.WaitFor(t, 30*time.Second, func() string { return "50 WHIP frames of each kind at the bot (" + got.String() + ")" }, func() bool {
		return got.Count(webrtc.MimeTypeH264) >= 50 && got.Count(webrtc.MimeTypeOpus) >= 50
	})
	for _, codec := range []string{webrtc.MimeTypeH264, webrtc.MimeTypeOpus} {
		if err := sdktest.InOrder(got.Counters(codec)); err != nil {
			t.Errorf("%s: %v", codec, err)
		}
	}
	var obs protocol.Participant
	for _, p := range viewer.Participants() {
		if p.Identity == "obs" {
			obs = p
		}
	}
	if obs.ID == "" {
		t.Fatalf("the WHIP publisher is not among the room's participants: %+v", viewer.Participants())
	}

	if code := c.end(); code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
	select {
	case p := <-left:
		if p.ID != obs.ID {
			t.Errorf("participant %s left, want the WHIP publisher %s", p.ID, obs.ID)
		}
	case <-ctx.Done():
		t.Fatal("the WHIP publisher did not leave the room after DELETE")
	}
	resp, _ := c.request(http.MethodDelete, c.location, "", "", c.token)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE of an ended session: %s, want 404", resp.Status)
	}
}

// A WHEP client (plain pion, receive-only) watches a room: it gets the
// video an SDK bot publishes, complete and in order.
func TestWHEPWatchesRoom(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice, err := sdk.Join(ctx, srv.URL(), sdktest.Token(t, srv, "alice", "show", protocol.AllGrants()), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Leave()
	pub, err := sdktest.Publish(alice, sdk.VP8, sdk.Opus)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	c := newClient(t, srv.URL(), "/whep", sdktest.Token(t, srv, "player", "show", protocol.Grants{Subscribe: true}))
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := c.pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var counters []uint32
	audio := 0
	var wg sync.WaitGroup
	c.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		defer wg.Done()
		sb := samplebuilder.New(128, &codecs.VP8Packet{}, 90000)
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if tr.Kind() == webrtc.RTPCodecTypeAudio {
				mu.Lock()
				audio++
				mu.Unlock()
				continue
			}
			sb.Push(p)
			for s := sb.Pop(); s != nil; s = sb.Pop() {
				if len(s.Data) >= 14 {
					mu.Lock()
					counters = append(counters, binary.BigEndian.Uint32(s.Data[10:]))
					mu.Unlock()
				}
			}
		}
	})
	c.connect()
	sdktest.WaitFor(t, 30*time.Second, func() string { return "50 video frames and 50 audio packets over WHEP" }, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(counters) >= 50 && audio >= 50
	})
	mu.Lock()
	err = sdktest.InOrder(counters)
	mu.Unlock()
	if err != nil {
		t.Error(err)
	}
	if code := c.end(); code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
	c.pc.Close()
	wg.Wait()
}

// Requests without a valid bearer token are refused with 401, and the
// grants of the WebSocket protocol apply: publishing needs publish,
// watching needs subscribe.
func TestRefusals(t *testing.T) {
	srv := sdktest.Start(t)
	whipURL, whepURL := srv.URL()+"/whip", srv.URL()+"/whep"
	c := newClient(t, srv.URL(), "/whip", "")
	if _, err := c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := auth.Mint("APIforged", "not-the-secret", auth.Claims{Identity: "x", Room: "stream", Grants: protocol.AllGrants()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	subOnly := sdktest.Token(t, srv, "watcher", "stream", protocol.Grants{Subscribe: true})
	pubOnly := sdktest.Token(t, srv, "encoder", "stream", protocol.Grants{Publish: true})
	for _, tc := range []struct {
		name, url, ctype, body, token string
		want                          int
	}{
		{"no token", whipURL, "application/sdp", offer.SDP, "", http.StatusUnauthorized},
		{"forged token", whipURL, "application/sdp", offer.SDP, forged, http.StatusUnauthorized},
		{"garbage token", whepURL, "application/sdp", offer.SDP, "not.a.jwt", http.StatusUnauthorized},
		{"whip without publish grant", whipURL, "application/sdp", offer.SDP, subOnly, http.StatusForbidden},
		{"whep without subscribe grant", whepURL, "application/sdp", offer.SDP, pubOnly, http.StatusForbidden},
		{"not sdp", whipURL, "application/json", "{}", pubOnly, http.StatusUnsupportedMediaType},
		{"bad sdp", whipURL, "application/sdp", "v=0\r\nnonsense", pubOnly, http.StatusBadRequest},
		{"huge sdp", whipURL, "application/sdp", strings.Repeat("a", 70<<10), pubOnly, http.StatusRequestEntityTooLarge},
	} {
		resp, body := c.request(http.MethodPost, tc.url, tc.ctype, tc.body, tc.token)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s %q, want %d", tc.name, resp.Status, body, tc.want)
		}
		if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without a WWW-Authenticate: Bearer challenge", tc.name)
		}
	}

	// A live session refuses other tokens, and unknown sessions are 404.
	c.token = pubOnly
	c.connect()
	for _, tc := range []struct {
		name, token string
		want        int
	}{{"no token", "", http.StatusUnauthorized}, {"another valid token", subOnly, http.StatusUnauthorized}} {
		resp, _ := c.request(http.MethodDelete, c.location, "", "", tc.token)
		if resp.StatusCode != tc.want {
			t.Errorf("DELETE with %s: %s, want %d", tc.name, resp.Status, tc.want)
		}
	}
	resp, _ := c.request(http.MethodPatch, c.location, "application/trickle-ice-sdpfrag", "a=ice-ufrag:x\r\na=ice-pwd:y\r\n", pubOnly, "If-Match", "*")
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("ICE restart PATCH: %s, want 422", resp.Status)
	}
	// Trickled candidates are bounded: 64 a request, 256 a session.
	var frag strings.Builder
	frag.WriteString("a=ice-ufrag:" + c.remoteUfrag() + "\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n")
	for i := range 65 {
		fmt.Fprintf(&frag, "a=candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host\r\n", i, 20000+i)
	}
	lines := strings.SplitAfter(frag.String(), "\r\n")
	resp, body := c.request(http.MethodPatch, c.location, "application/trickle-ice-sdpfrag", frag.String(), pubOnly)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PATCH of 65 candidates: %s %q, want 400", resp.Status, body)
	}
	sixtyFour := strings.Join(lines[:3+64], "")
	accepted, refused := 0, false
	for range 5 {
		resp, body = c.request(http.MethodPatch, c.location, "application/trickle-ice-sdpfrag", sixtyFour, pubOnly)
		if resp.StatusCode == http.StatusBadRequest && strings.Contains(body, "256") {
			refused = true
			break
		}
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("PATCH of 64 candidates: %s %q", resp.Status, body)
		}
		accepted++
	}
	// The client trickled its own few candidates first: 3 or 4 more sets
	// of 64 fit in 256, the next is refused.
	if !refused || accepted < 3 || accepted > 4 {
		t.Errorf("%d PATCHes of 64 candidates accepted, refused after: %v; want 3 or 4 and a refusal", accepted, refused)
	}
	resp, _ = c.request(http.MethodDelete, whipURL+"/0000", "", "", pubOnly)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE of an unknown session: %s, want 404", resp.Status)
	}
	if code := c.end(); code != http.StatusOK {
		t.Errorf("DELETE: %d", code)
	}
}

// The endpoints hold at most MaxSessions sessions: one more is refused
// with 503 and Retry-After, and a DELETE frees the slot.
func TestSessionBound(t *testing.T) {
	srv := sdktest.Start(t)
	key, secret, _ := srv.DevKey()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := whip.New(ctx, whip.Config{
		Verify:            auth.Keys{key: secret}.Verify,
		ServerURL:         srv.URL,
		NewPeerConnection: func() (*webrtc.PeerConnection, error) { return loopbackAPI().NewPeerConnection(webrtc.Configuration{}) },
		MaxSessions:       1,
		ICEServers: func(host, identity string) []protocol.ICEServer {
			return []protocol.ICEServer{{URLs: []string{"stun:" + host}}, {URLs: []string{"turn:relay.example:3478?transport=udp"}, Username: "1700000000:" + identity, Credential: "c2VjcmV0"}}
		},
	})
	mux := http.NewServeMux()
	w.Mount(mux)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer w.Close()

	newPublisher := func(identity string) *whipClient {
		c := newClient(t, hs.URL, "/whip", sdktest.Token(t, srv, identity, "bound", protocol.Grants{Publish: true}))
		if _, err := c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := newPublisher("one")
	first.connect()
	// The answer offers the ICE servers, with TURN credentials for the
	// token's identity (RFC 9725 4.6).
	wantLinks := []string{
		"<stun:" + strings.TrimPrefix(hs.URL, "http://") + `>; rel="ice-server"`,
		`<turn:relay.example:3478?transport=udp>; rel="ice-server"; username="1700000000:one"; credential="c2VjcmV0"; credential-type="password"`,
	}
	if strings.Join(first.links, "\n") != strings.Join(wantLinks, "\n") {
		t.Errorf("Link headers:\n%s\nwant:\n%s", strings.Join(first.links, "\n"), strings.Join(wantLinks, "\n"))
	}
	second := newPublisher("two")
	offer, err := second.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := second.request(http.MethodPost, hs.URL+"/whip", "application/sdp", offer.SDP, second.token)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a session past the bound: %s %q, want 503 with Retry-After", resp.Status, body)
	}
	if code := first.end(); code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
	if n := w.Sessions(); n != 0 {
		t.Fatalf("%d sessions after DELETE", n)
	}
	third := newPublisher("three")
	third.connect()
	if code := third.end(); code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
}

// When the track a WHEP player watches ends, the room's next video track
// takes its place in the same stream: the player keeps getting frames,
// with sequence numbers that carry on.
func TestWHEPMovesToTheNextTrack(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publish := func(who string) (*sdk.Room, *sdktest.Publisher) {
		r, err := sdk.Join(ctx, srv.URL(), sdktest.Token(t, srv, who, "relay", protocol.AllGrants()), sdk.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Leave() })
		p, err := sdktest.Publish(r, sdk.VP8)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		return r, p
	}
	alice, alicePub := publish("alice")

	c := newClient(t, srv.URL(), "/whep", sdktest.Token(t, srv, "player", "relay", protocol.Grants{Subscribe: true}))
	if _, err := c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	frames, bigJumps := 0, 0
	var wg sync.WaitGroup
	c.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		defer wg.Done()
		sb := samplebuilder.New(128, &codecs.VP8Packet{}, 90000)
		var last uint16
		for i := 0; ; i++ {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			mu.Lock()
			if d := int16(p.SequenceNumber - last); i > 0 && (d > 100 || d < -100) {
				bigJumps++
			}
			last = p.SequenceNumber
			sb.Push(p)
			for s := sb.Pop(); s != nil; s = sb.Pop() {
				frames++
			}
			mu.Unlock()
		}
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return frames }
	c.connect()
	sdktest.WaitFor(t, 30*time.Second, func() string { return "50 frames over WHEP" }, func() bool { return count() >= 50 })
	// The player shows alice's track, the only one; bob comes, alice goes.
	publish("bob")
	alicePub.Stop()
	alice.Leave()
	before := count()
	sdktest.WaitFor(t, 30*time.Second, func() string { return "50 more frames after alice left" }, func() bool { return count() >= before+50 })
	mu.Lock()
	jumps := bigJumps
	mu.Unlock()
	if jumps != 0 {
		t.Errorf("the stream's sequence numbers jumped %d times", jumps)
	}
	c.end()
	c.pc.Close()
	wg.Wait()
}
