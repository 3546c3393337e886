package sdk_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// publishAudio sends an Opus frame every 20 ms until ctx ends.
func publishAudio(ctx context.Context, t *testing.T, r *sdk.Room) *sdk.LocalTrack {
	t.Helper()
	audio, err := r.PublishTrack(sdk.Opus, "microphone")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := uint32(0); ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = audio.WriteSample(media.Sample{Data: opusFrame(n), Duration: 20 * time.Millisecond})
		}
	}()
	return audio
}

// eventLog keeps the last value a callback delivered.
type eventLog[T any] struct {
	mu   sync.Mutex
	last T
	n    int
}

func (l *eventLog[T]) put(v T) {
	l.mu.Lock()
	l.last, l.n = v, l.n+1
	l.mu.Unlock()
}

func (l *eventLog[T]) get() (T, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last, l.n
}

// Two bots send audio whose RFC 6464 levels differ: the room's speaker
// events name the louder first, and switch when the levels swap.
func TestSpeakerEventsFollowAudioLevels(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	watcher := join(t, ctx, srv, "watcher", "talk", sdk.Options{})
	var speakers eventLog[[]protocol.Speaker]
	watcher.OnSpeakersChanged(speakers.put)
	alice := join(t, ctx, srv, "alice", "talk", sdk.Options{})
	carol := join(t, ctx, srv, "carol", "talk", sdk.Options{})
	aTrack := publishAudio(ctx, t, alice)
	cTrack := publishAudio(ctx, t, carol)
	setLevels := func(a, c uint8) {
		t.Helper()
		if err := alice.SetAudioLevel(aTrack, a); err != nil {
			t.Fatal(err)
		}
		if err := carol.SetAudioLevel(cTrack, c); err != nil {
			t.Fatal(err)
		}
	}
	first := func(who *sdk.Room) func() bool {
		return func() bool {
			s, _ := speakers.get()
			return len(s) > 0 && s[0].ParticipantID == who.Self().ID
		}
	}
	setLevels(20, 55)
	waitFor(t, "alice, then carol, to be the speakers", 20*time.Second, func() bool {
		s, _ := speakers.get()
		return len(s) == 2 && s[0].ParticipantID == alice.Self().ID && s[1].ParticipantID == carol.Self().ID
	})
	s, n := speakers.get()
	if s[0].Level <= s[1].Level {
		t.Errorf("speakers %+v, want alice louder", s)
	}
	setLevels(55, 20)
	waitFor(t, "carol to lead once the levels swap", 20*time.Second, first(carol))
	setLevels(127, 127)
	waitFor(t, "nobody to speak in silence", 20*time.Second, func() bool {
		s, _ := speakers.get()
		return len(s) == 0
	})
	_, m := speakers.get()
	t.Logf("speaker events: %d before the swap, %d in all", n, m)
}

// lossy drops a share of the RTP packets a bot sends the first time
// (retransmissions pass), while on.
type lossy struct {
	interceptor.NoOp
	on      atomic.Bool
	percent int
	mu      sync.Mutex
	seen    map[string]bool
}

func (l *lossy) NewInterceptor(string) (interceptor.Interceptor, error) { return l, nil }

func (l *lossy) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		k := fmt.Sprint(h.SSRC, h.SequenceNumber)
		l.mu.Lock()
		first := !l.seen[k]
		l.seen[k] = true
		l.mu.Unlock()
		if first && l.on.Load() && rand.IntN(100) < l.percent {
			return len(payload), nil
		}
		return w.Write(h, payload, a)
	})
}

// A bot whose uplink loses 10% of its packets is reported to the others as
// poor (or good), and as excellent once the loss stops.
func TestConnectionQualityFollowsUplinkLoss(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	watcher := join(t, ctx, srv, "watcher", "q", sdk.Options{})
	var mu sync.Mutex
	levels := map[string]protocol.Quality{}
	watcher.OnConnectionQuality(func(us []protocol.Quality) {
		mu.Lock()
		for _, u := range us {
			levels[u.ParticipantID] = u
			if u.ParticipantID == watcher.Self().ID && u.Quality == protocol.QualityPoor {
				t.Logf("watcher reported %+v", u)
			}
		}
		mu.Unlock()
	})
	drop := &lossy{percent: 10, seen: map[string]bool{}}
	alice := join(t, ctx, srv, "alice", "q", sdk.Options{NetworkInterceptors: []interceptor.Factory{drop}})
	publishMedia(ctx, t, alice)
	qualityOf := func(id string) (protocol.Quality, bool) {
		mu.Lock()
		defer mu.Unlock()
		q, ok := levels[id]
		return q, ok
	}
	waitFor(t, "alice reported excellent on a clean link", 20*time.Second, func() bool {
		q, ok := qualityOf(alice.Self().ID)
		return ok && q.Quality == protocol.QualityExcellent
	})
	drop.on.Store(true)
	waitFor(t, "alice reported poor or good under 10% loss", 20*time.Second, func() bool {
		q, _ := qualityOf(alice.Self().ID)
		return q.Quality == protocol.QualityPoor || q.Quality == protocol.QualityGood
	})
	q, _ := qualityOf(alice.Self().ID)
	t.Logf("under loss: %+v", q)
	if q.LossPercent < 3 {
		t.Errorf("reported loss %.1f%% under 10%% loss", q.LossPercent)
	}
	drop.on.Store(false)
	waitFor(t, "alice reported excellent once the loss stopped", 20*time.Second, func() bool {
		q, _ := qualityOf(alice.Self().ID)
		return q.Quality == protocol.QualityExcellent
	})
	// The watcher's own link never lost anything: the loss its receiver
	// reports show came from alice's uplink, and is not held against it.
	waitFor(t, "the watcher reported excellent", 20*time.Second, func() bool {
		q, ok := qualityOf(watcher.Self().ID)
		return ok && q.Quality == protocol.QualityExcellent
	})
	// (It may dip while alice's loss shows in its receiver reports before
	// the server's view of her uplink catches up, or when a loaded machine
	// delays packets: logged above, not failed.)
}

// Muting stops the packets at the server and tells the room; unmuting
// brings both back. Hands go up and down.
func TestMuteStopsPacketsAndTellsTheRoom(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	watcher := join(t, ctx, srv, "watcher", "m", sdk.Options{})
	var muted eventLog[protocol.TrackMuted]
	var hands eventLog[protocol.HandRaised]
	watcher.OnTrackMuted(muted.put)
	watcher.OnHandRaised(hands.put)
	alice := join(t, ctx, srv, "alice", "m", sdk.Options{})
	track := publishAudio(ctx, t, alice)

	var trackID string
	waitFor(t, "the watcher to learn alice's track", 10*time.Second, func() bool {
		for _, p := range watcher.Participants() {
			if p.ID == alice.Self().ID && len(p.Tracks) == 1 {
				trackID = p.Tracks[0].ID
				return true
			}
		}
		return false
	})
	packets := func() uint64 {
		n, ok := srv.TrackPacketsReceived("m", trackID)
		if !ok {
			t.Fatalf("server has no track %s", trackID)
		}
		return n
	}
	growing := func(what string) {
		t.Helper()
		n := packets()
		waitFor(t, what, 10*time.Second, func() bool { return packets() > n+10 })
	}
	growing("alice's audio to reach the server")

	if err := alice.SetMuted(track, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher to hear of the mute", 10*time.Second, func() bool {
		m, _ := muted.get()
		return m.Muted && m.TrackID == trackID && m.ParticipantID == alice.Self().ID
	})
	// Packets in flight may still land; then the count must stand still
	// while samples keep being written.
	var settled uint64
	waitFor(t, "the server's packet count to stop", 10*time.Second, func() bool {
		a := packets()
		time.Sleep(300 * time.Millisecond)
		settled = packets()
		return a == settled
	})
	time.Sleep(500 * time.Millisecond)
	if n := packets(); n != settled {
		t.Fatalf("muted audio still arrives: %d packets, then %d", settled, n)
	}
	for _, p := range watcher.Participants() {
		if p.ID == alice.Self().ID && (len(p.Tracks) != 1 || !p.Tracks[0].Muted) {
			t.Errorf("watcher's view of alice: %+v, want her track muted", p)
		}
	}
	// A late joiner sees the mute in joined.
	late := join(t, ctx, srv, "late", "m", sdk.Options{})
	for _, p := range late.Participants() {
		if p.ID == alice.Self().ID && (len(p.Tracks) != 1 || !p.Tracks[0].Muted) {
			t.Errorf("late joiner's view of alice: %+v, want her track muted", p)
		}
	}

	if err := alice.SetMuted(track, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher to hear of the unmute", 10*time.Second, func() bool {
		m, _ := muted.get()
		return !m.Muted && m.TrackID == trackID
	})
	growing("alice's audio to flow again")

	if err := alice.RaiseHand(true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hand to go up", 10*time.Second, func() bool {
		h, _ := hands.get()
		return h.Raised && h.ParticipantID == alice.Self().ID
	})
	if err := alice.RaiseHand(false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hand to go down", 10*time.Second, func() bool {
		h, _ := hands.get()
		return !h.Raised
	})
}

// Mute requests for someone else's track, or a flood of them, are refused
// with an error and the session carries on.
func TestMuteRefusals(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var errs eventLog[*protocol.Error]
	alice := join(t, ctx, srv, "alice", "r", sdk.Options{OnError: errs.put})
	bob := join(t, ctx, srv, "bob", "r", sdk.Options{})
	publishAudio(ctx, t, bob)
	var bobTrack string
	waitFor(t, "alice to learn bob's track", 10*time.Second, func() bool {
		for _, p := range alice.Participants() {
			if p.ID == bob.Self().ID && len(p.Tracks) == 1 {
				bobTrack = p.Tracks[0].ID
				return true
			}
		}
		return false
	})
	sendRaw(t, alice, &protocol.Mute{TrackID: bobTrack, Muted: true})
	waitFor(t, "a refusal of muting bob's track", 10*time.Second, func() bool {
		e, _ := errs.get()
		return e != nil && e.Code == protocol.CodeBadMessage && e.Ref == protocol.TypeMute
	})
	for _, p := range alice.Participants() {
		if p.ID == bob.Self().ID && p.Tracks[0].Muted {
			t.Error("alice muted bob's track")
		}
	}
	// A huge id is refused without being echoed back whole.
	_, n0 := errs.get()
	sendRaw(t, alice, &protocol.Mute{TrackID: strings.Repeat("x", 100000), Muted: true})
	waitFor(t, "a refusal of a huge track id", 10*time.Second, func() bool {
		_, n := errs.get()
		return n > n0
	})
	if e, _ := errs.get(); len(e.Message) > 200 {
		t.Errorf("the refusal is %d bytes long", len(e.Message))
	}
	// A flood: past the budget, refusals; the session stays up.
	_, before := errs.get()
	for i := 0; i < 100; i++ {
		sendRaw(t, alice, &protocol.RaiseHand{Raised: i%2 == 0})
	}
	waitFor(t, "the flood to be refused", 10*time.Second, func() bool {
		e, n := errs.get()
		return n > before && e.Ref == protocol.TypeRaiseHand
	})
	if err := alice.Err(); err != nil {
		t.Fatalf("alice's session ended: %v", err)
	}
}

func sendRaw(t *testing.T, r *sdk.Room, m any) {
	t.Helper()
	if err := r.SendRaw(m); err != nil {
		t.Fatal(err)
	}
}

// A screen track is announced with source "screen", beside the camera.
func TestPublishScreen(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	watcher := join(t, ctx, srv, "watcher", "s", sdk.Options{})
	alice := join(t, ctx, srv, "alice", "s", sdk.Options{})
	screen, err := alice.PublishScreen(sdk.VP8)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for n := uint32(0); ctx.Err() == nil; n++ {
			<-tick.C
			_ = screen.WriteSample(media.Sample{Data: vp8Frame(n, n%20 == 0), Duration: 50 * time.Millisecond})
		}
	}()
	waitFor(t, "the watcher to see alice's screen track", 15*time.Second, func() bool {
		for _, p := range watcher.Participants() {
			if p.ID == alice.Self().ID && len(p.Tracks) == 1 {
				return p.Tracks[0].Source == "screen" && p.Tracks[0].Kind == "video"
			}
		}
		return false
	})
}
