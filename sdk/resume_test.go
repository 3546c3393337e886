package sdk_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/sdp/v3"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/netgate"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func iceUfrag(t *testing.T, raw string) string {
	var d sdp.SessionDescription
	if err := d.Unmarshal([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	for _, m := range d.MediaDescriptions {
		if v, ok := m.Attribute("ice-ufrag"); ok {
			return v
		}
	}
	v, _ := d.Attribute("ice-ufrag")
	return v
}

type chatLog struct {
	mu  sync.Mutex
	ids map[string]int
	all []string
}

func (c *chatLog) on(m protocol.ChatMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids[m.ID]++
	c.all = append(c.all, m.Text)
}

// A bot whose signaling drops resumes within the grace period: it keeps its
// participant id and its published track ids, gets the chat sent while it
// was away exactly once, ICE restarts on both PeerConnections, and its
// video keeps reaching the others, who never saw it leave.
func TestResumeKeepsIdentityTracksAndChat(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bLog := newFrameLog()
	var left, joined atomic.Int32
	bob := join(t, ctx, srv, "bob", "rs", sdk.Options{
		OnTrack:             bLog.onTrack,
		OnParticipantLeft:   func(protocol.Participant) { left.Add(1) },
		OnParticipantJoined: func(protocol.Participant) { joined.Add(1) },
	})
	g := netgate.Start(t, strings.TrimPrefix(srv.URL(), "http://"))
	aChat := &chatLog{ids: map[string]int{}}
	resumed := make(chan protocol.Participant, 4)
	var reconnecting atomic.Int32
	alice, err := sdk.Join(ctx, "http://"+g.Addr(), mintToken(t, srv, "alice", "rs", protocol.AllGrants()), sdk.Options{
		OnChat:         aChat.on,
		OnReconnect:    func(p protocol.Participant) { resumed <- p },
		OnReconnecting: func(error) { reconnecting.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Leave() })
	publishMedia(ctx, t, alice)
	publishMedia(ctx, t, bob) // so that alice's subscriber PeerConnection is negotiated too
	waitFor(t, "bob to get alice's video ("+describe(bLog)+")", 20*time.Second, func() bool { return bLog.count("video") >= 50 })
	waitFor(t, "alice's subscriber PeerConnection to be negotiated", 20*time.Second, func() bool {
		return alice.SubscriberPC().RemoteDescription() != nil
	})
	idBefore := alice.Self().ID
	tracksBefore := trackIDs(bob, idBefore)
	pubUfrag := iceUfrag(t, alice.PublisherPC().LocalDescription().SDP)
	subUfrag := iceUfrag(t, alice.SubscriberPC().RemoteDescription().SDP)
	joinedBefore := joined.Load()

	// The outage: alice's signaling is cut and cannot come back until the
	// gate opens; meanwhile bob chats.
	g.Cut()
	waitFor(t, "bob to see alice reconnecting", 20*time.Second, func() bool {
		for _, p := range bob.Participants() {
			if p.ID == idBefore && p.Reconnecting {
				return true
			}
		}
		return false
	})
	for i := 0; i < 3; i++ {
		if _, err := bob.SendChat(ctx, fmt.Sprint("while you were away ", i)); err != nil {
			t.Fatal(err)
		}
	}
	g.Open()

	select {
	case p := <-resumed:
		if reconnecting.Load() == 0 {
			t.Error("OnReconnecting was not called before the resume")
		}
		if p.ID != idBefore {
			t.Fatalf("alice came back as %s, was %s: a new join, not a resume", p.ID, idBefore)
		}
	case <-ctx.Done():
		t.Fatal("alice did not resume")
	}
	waitFor(t, "alice to get the missed chat", 20*time.Second, func() bool {
		aChat.mu.Lock()
		defer aChat.mu.Unlock()
		return len(aChat.all) >= 3
	})
	aChat.mu.Lock()
	for id, n := range aChat.ids {
		if n != 1 {
			t.Errorf("chat %s delivered %d times", id, n)
		}
	}
	aChat.mu.Unlock()
	waitFor(t, "ICE to restart on both PeerConnections", 20*time.Second, func() bool {
		pub, sub := alice.PublisherPC().LocalDescription(), alice.SubscriberPC().RemoteDescription()
		return pub != nil && sub != nil && iceUfrag(t, pub.SDP) != pubUfrag && iceUfrag(t, sub.SDP) != subUfrag
	})
	before := bLog.count("video")
	waitFor(t, "alice's video to keep reaching bob", 20*time.Second, func() bool { return bLog.count("video") >= before+50 })
	if got := trackIDs(bob, idBefore); got != tracksBefore || got == "" {
		t.Errorf("alice's tracks as bob sees them: %q, were %q", got, tracksBefore)
	}
	if left.Load() != 0 || joined.Load() != joinedBefore {
		t.Errorf("bob saw %d leaves and %d new joins during a resume", left.Load(), joined.Load()-joinedBefore)
	}
	bLog.mu.Lock()
	from := bLog.from["video"]
	bLog.mu.Unlock()
	if from != idBefore {
		t.Errorf("bob's video comes from %s, want %s", from, idBefore)
	}
}

func trackIDs(r *sdk.Room, participant string) string {
	for _, p := range r.Participants() {
		if p.ID == participant {
			var ids []string
			for _, t := range p.Tracks {
				ids = append(ids, t.ID)
			}
			return strings.Join(ids, ",")
		}
	}
	return ""
}

// The document session lives on the data channels, which a resume keeps:
// edits made while the signaling is down are acknowledged, and after the
// resume the bot's participant id and document are the same.
func TestResumeKeepsDocuments(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bob := join(t, ctx, srv, "bob", "rd", sdk.Options{})
	g := netgate.Start(t, strings.TrimPrefix(srv.URL(), "http://"))
	resumed := make(chan protocol.Participant, 4)
	alice, err := sdk.Join(ctx, "http://"+g.Addr(), mintToken(t, srv, "alice", "rd", protocol.AllGrants()), sdk.Options{
		OnReconnect: func(p protocol.Participant) { resumed <- p },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Leave() })
	info, err := alice.Docs().Create(ctx, "notes", "start\n")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := alice.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	id := alice.Self().ID

	g.Cut() // signaling down, media and data channels up
	if err := doc.Insert(0, "offline edit "); err != nil {
		t.Fatal(err)
	}
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatalf("an edit while the signaling was down: %v", err)
	}
	g.Open()
	select {
	case p := <-resumed:
		if p.ID != id {
			t.Fatalf("alice came back as %s, was %s", p.ID, id)
		}
	case <-ctx.Done():
		t.Fatal("alice did not resume")
	}
	if err := doc.Insert(0, "back "); err != nil {
		t.Fatal(err)
	}
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	bdoc, err := bob.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := bdoc.Text(); got != "back offline edit start\n" {
		t.Errorf("bob reads %q", got)
	}
}
