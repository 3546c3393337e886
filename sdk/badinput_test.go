package sdk_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// rawClient speaks the protocol by hand, to send what no SDK would.
type rawClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialRaw(t *testing.T, srv *node.Node) *rawClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/ws"
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &rawClient{t: t, ws: ws}
}

func (c *rawClient) sendText(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

func (c *rawClient) send(m any) {
	c.t.Helper()
	data, err := protocol.Encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendText(string(data))
}

// next returns the next message that is not a candidate or offer (those
// arrive whenever the server likes).
func (c *rawClient) next() (any, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		m, err := protocol.Decode(data)
		if err != nil {
			c.t.Fatalf("server sent undecodable %s: %v", data, err)
		}
		switch m.(type) {
		case *protocol.Candidate, *protocol.Offer, *protocol.TrackPublished, *protocol.ParticipantJoined:
			continue
		}
		return m, nil
	}
}

func (c *rawClient) expectError(code string) *protocol.Error {
	c.t.Helper()
	m, err := c.next()
	if err != nil {
		c.t.Fatalf("want error %s, connection ended: %v", code, err)
	}
	e, ok := m.(*protocol.Error)
	if !ok || e.Code != code {
		c.t.Fatalf("want error %s, got %s %+v", code, protocol.TypeOf(m), m)
	}
	if e.Message == "" {
		c.t.Fatalf("error %s has no message", code)
	}
	return e
}

// Bad input gets a clear error and the call goes on: media keeps flowing
// between two bots while a third client sends garbage.
func TestBadInputIsRefusedAndCallContinues(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bLog := newFrameLog()
	join(t, ctx, srv, "bob", "room", sdk.Options{OnTrack: bLog.onTrack})
	a := join(t, ctx, srv, "alice", "room", sdk.Options{})
	publishMedia(ctx, t, a)
	waitFor(t, "media to flow", 20*time.Second, func() bool { return bLog.count("video") >= 20 })

	t.Run("bad token ends only that connection", func(t *testing.T) {
		key, _, _ := srv.DevKey()
		forged, err := auth.Mint(key, "not-the-secret", auth.Claims{Identity: "eve", Room: "room"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for name, tok := range map[string]string{
			"garbage": "not-a-token",
			"empty":   "",
			"forged":  forged,
		} {
			c := dialRaw(t, srv)
			c.send(&protocol.Join{Version: protocol.Version, Token: tok})
			c.expectError(protocol.CodeBadToken)
			if _, err := c.next(); err == nil {
				t.Fatalf("%s: connection still open after bad token", name)
			}
		}
		c := dialRaw(t, srv)
		c.send(&protocol.Join{Version: 99, Token: mintToken(t, srv, "v", "room", protocol.AllGrants())})
		c.expectError(protocol.CodeBadVersion)
	})

	t.Run("malformed messages keep the connection", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.sendText("this is not json")
		c.expectError(protocol.CodeBadMessage)
		c.sendText(`{"type":"offer","target":"publisher","sdp":"v=0"}`)
		c.expectError(protocol.CodeNotJoined)
		c.sendText(`{"type":"join","version":1,"token":"` + mintToken(t, srv, "mallory", "room", protocol.AllGrants()) + `"}`)
		m, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		joined, ok := m.(*protocol.Joined)
		if !ok {
			t.Fatalf("want joined after garbage, got %+v", m)
		}
		if len(joined.Participants) != 2 {
			t.Errorf("mallory sees %d others, want 2", len(joined.Participants))
		}
		c.sendText(`{"no type":true}`)
		c.expectError(protocol.CodeBadMessage)
		c.sendText(`{"type":"warp-drive"}`)
		c.expectError(protocol.CodeBadMessage)
		c.sendText(`{"type":"offer","target":"publisher","sdp":42}`)
		c.expectError(protocol.CodeBadMessage)
		c.send(&protocol.Offer{Target: protocol.TargetPublisher, SDP: "this is not an SDP"})
		e := c.expectError(protocol.CodeBadSDP)
		if e.Ref != protocol.TypeOffer {
			t.Errorf("bad sdp error ref = %q, want offer", e.Ref)
		}
		c.send(&protocol.Offer{Target: protocol.TargetSubscriber, SDP: "v=0"})
		c.expectError(protocol.CodeBadMessage)
		c.send(&protocol.Answer{Target: protocol.TargetSubscriber, SDP: "garbage answer"})
		c.expectError(protocol.CodeBadSDP)
		c.send(&protocol.Candidate{Target: "sideways", Candidate: &protocol.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"}})
		c.expectError(protocol.CodeBadCandidate)
		c.send(&protocol.Join{Version: protocol.Version, Token: "x"})
		c.expectError(protocol.CodeBadMessage) // already joined: still alive
		raw, _ := json.Marshal(map[string]any{"type": "leave"})
		c.sendText(string(raw))
	})

	// The call carried on through all of it.
	before := bLog.count("video")
	waitFor(t, "media to keep flowing", 10*time.Second, func() bool { return bLog.count("video") >= before+50 })
	bLog.checkInOrder(t, "video")
	bLog.checkInOrder(t, "audio")
	waitFor(t, "mallory to leave", 10*time.Second, func() bool {
		var body struct{ Participants int }
		return getJSON(t, srv.URL()+"/healthz", &body) == nil && body.Participants == 2
	})
}
