package node

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func (c *wsClient) sendMsg(m any) {
	c.t.Helper()
	data, err := protocol.Encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		c.t.Fatal(err)
	}
}

func (c *wsClient) waitError(code string) *protocol.Error {
	c.t.Helper()
	return c.waitFor(func(m any) bool { e, ok := m.(*protocol.Error); return ok && e.Code == code }).(*protocol.Error)
}

func candidate(i int, size int) *protocol.Candidate {
	mid, idx := "0", uint16(0)
	text := fmt.Sprintf("candidate:%d 1 udp 2122260223 192.0.2.%d 5%04d typ host", i, i%250, i%10000)
	text += strings.Repeat(" x", (size-len(text))/2)
	return &protocol.Candidate{Target: protocol.TargetPublisher, Candidate: &protocol.ICECandidate{Candidate: text, SDPMid: &mid, SDPMLineIndex: &idx}}
}

// Candidates sent before the offer are held, but only up to a bound; the
// one past it is refused with an error and the connection carries on.
func TestPendingCandidatesBounded(t *testing.T) {
	s := startTestServer(t, Config{})
	c := dialWS(t, s)
	c.joinAs(s, "ann", "r")
	for i := 0; i < 64; i++ {
		c.sendMsg(candidate(i, 100))
	}
	c.sendMsg(candidate(64, 100))
	e := c.waitError(protocol.CodeLimit)
	if e.Ref != protocol.TypeCandidate {
		t.Errorf("limit error refers to %q, want candidate", e.Ref)
	}
	// A candidate far longer than any real one is refused outright.
	c.sendMsg(&protocol.Candidate{Target: protocol.TargetSubscriber, Candidate: &protocol.ICECandidate{Candidate: strings.Repeat("c", 4096)}})
	c.waitError(protocol.CodeBadCandidate)
	// A bad candidate gets an error (the docs promise one), even before
	// the offer, when it would only be held.
	c.sendMsg(&protocol.Candidate{Target: "sideways", Candidate: &protocol.ICECandidate{Candidate: "candidate:1 1 udp 1 192.0.2.1 9 typ host"}})
	c.waitError(protocol.CodeBadCandidate)
	c.sendMsg(&protocol.Candidate{Target: protocol.TargetSubscriber, Candidate: &protocol.ICECandidate{Candidate: "candidate:garbage"}})
	e = c.waitError(protocol.CodeBadCandidate)
	if !strings.Contains(e.Message, "does not parse") {
		t.Errorf("garbage candidate refused with %q", e.Message)
	}
}

// An offer's sources are checked before anything is kept: too many, or an
// SDP that does not parse, change nothing.
func TestOfferSourcesBounded(t *testing.T) {
	s := startTestServer(t, Config{})
	c := dialWS(t, s)
	c.joinAs(s, "ann", "r")
	many := map[string]string{}
	for i := 0; i < 17; i++ {
		many[fmt.Sprintf("track-%d", i)] = "camera"
	}
	c.sendMsg(&protocol.Offer{Target: protocol.TargetPublisher, SDP: "v=0 not really", Sources: many})
	c.waitError(protocol.CodeLimit)
	c.sendMsg(&protocol.Offer{Target: protocol.TargetPublisher, SDP: "v=0 not really", Sources: map[string]string{"a": "camera"}})
	c.waitError(protocol.CodeBadSDP)
	c.sendMsg(&protocol.Offer{Target: protocol.TargetPublisher, SDP: "v=0", Sources: map[string]string{"a": "hologram"}})
	c.waitError(protocol.CodeBadSDP)
}

// A publisher offer with more media sections than the bound is refused
// before Pion sees it (each would be a transceiver and, once media flows,
// goroutines and a packet cache); the connection carries on.
func TestOfferMediaSectionsBounded(t *testing.T) {
	s := startTestServer(t, Config{})
	c := dialWS(t, s)
	c.joinAs(s, "ann", "r")
	bob := dialWS(t, s)
	bob.joinAs(s, "bob", "r")
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for range sfu.MaxMediaSections + 1 {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.sendMsg(&protocol.Offer{Target: protocol.TargetPublisher, SDP: offer.SDP})
	e := c.waitError(protocol.CodeLimit)
	if !strings.Contains(e.Message, "media sections") {
		t.Errorf("refused with %q, want it to name the media sections", e.Message)
	}
	c.sendMsg(&protocol.SetPresence{State: protocol.PresenceOnline, Status: "still here"})
	bob.waitFor(func(m any) bool {
		p, ok := m.(*protocol.PresenceChanged)
		return ok && p.Status == "still here"
	})
}

// A message longer than the limit is refused with an error, costs no
// memory, and the connection carries on.
func TestOversizedMessageRefused(t *testing.T) {
	s := startTestServer(t, Config{})
	c := dialWS(t, s)
	c.joinAs(s, "big", "r")
	huge := `{"type":"chat","clientId":"x","text":"` + strings.Repeat("a", 2*signaling.MaxMessageSize) + `"}`
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(huge)); err != nil {
		t.Fatal(err)
	}
	e := c.waitError(protocol.CodeLimit)
	if !strings.Contains(e.Message, "longer than") {
		t.Errorf("oversized message refused with %q", e.Message)
	}
	c.sendMsg(&protocol.Chat{ClientID: "after", Text: "still here"})
	c.waitFor(func(m any) bool { cm, ok := m.(*protocol.ChatMessage); return ok && cm.ClientID == "after" })
}

// Hostile clients that try to make the server hold state (candidates,
// sources, chat, status, typing, oversized frames) are refused, and the
// server's heap stays bounded: measured from the heap, not from timings.
func TestHostileInputKeepsHeapBounded(t *testing.T) {
	s := startTestServer(t, Config{})
	watcher := dialWS(t, s)
	watcher.joinAs(s, "watcher", "r")
	const attackers = 8
	clients := make([]*wsClient, attackers)
	for i := range clients {
		clients[i] = dialWS(t, s)
		clients[i].joinAs(s, fmt.Sprintf("attacker-%d", i), "r")
		clients[i].pump() // answer pings however long the flood takes
	}
	watcher.pump()
	before := heapInUse()
	bigSources := map[string]string{}
	for i := 0; i < 16; i++ {
		bigSources[strings.Repeat("k", 120)+fmt.Sprint(i)] = "camera"
	}
	bigStatus := strings.Repeat("ü", protocol.MaxStatusLen+1)
	oversized := []byte(`{"type":"typing","x":"` + strings.Repeat("z", signaling.MaxMessageSize+1000) + `"}`)
	for _, c := range clients {
		if err := c.ws.WriteMessage(websocket.TextMessage, oversized); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 20; round++ { // 9 messages a round: within the rate burst
		for i, c := range clients {
			for k := 0; k < 4; k++ {
				c.sendMsg(candidate(round*4+k, 900))
			}
			c.sendMsg(&protocol.Offer{Target: protocol.TargetPublisher, SDP: strings.Repeat("v=0\r\n", 20000), Sources: bigSources})
			c.sendMsg(&protocol.SetPresence{State: protocol.PresenceAway, Status: bigStatus})
			c.sendMsg(&protocol.Typing{Typing: true})
			c.sendMsg(&protocol.Chat{ClientID: strings.Repeat("i", 65), Text: "x"})
			c.sendMsg(&protocol.Chat{ClientID: fmt.Sprint(round), Text: strings.Repeat("y", protocol.MaxChatLen+1)})
			_ = i
		}
	}
	// Everyone is still connected and served: a last round-trip each.
	for i, c := range clients {
		c.sendMsg(&protocol.SetPresence{State: protocol.PresenceOnline, Status: fmt.Sprint("ok ", i)})
	}
	seen := map[string]bool{}
	watcher.waitFor(func(m any) bool {
		if p, ok := m.(*protocol.PresenceChanged); ok && strings.HasPrefix(p.Status, "ok ") {
			seen[p.Status] = true
		}
		return len(seen) == attackers
	})
	// Each attacker was refused: it got limit errors.
	for _, c := range clients {
		c.waitError(protocol.CodeLimit)
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("heap grew by %d KB under hostile input", grown>>10)
	// 8 attackers sent ~17 MB; what the server may keep is its bounded
	// state: 64 candidates of at most 1 KB per PeerConnection, queues.
	if grown > 8<<20 {
		t.Errorf("heap grew by %d MB under hostile input", grown>>20)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// A client that floods messages is rate limited with an error, and the
// connection survives.
func TestMessageRateLimited(t *testing.T) {
	s := startTestServer(t, Config{})
	c := dialWS(t, s)
	c.joinAs(s, "ann", "r")
	for i := 0; i < 400; i++ {
		c.sendMsg(&protocol.SetPresence{State: protocol.PresenceOnline, Status: fmt.Sprint(i)})
	}
	e := c.waitError(protocol.CodeRateLimited)
	if !strings.Contains(e.Message, "a second") {
		t.Errorf("rate limit error does not say the rate: %q", e.Message)
	}
}

// Joins per address are rate limited at the WebSocket upgrade.
func TestJoinRatePerAddress(t *testing.T) {
	s := startTestServer(t, Config{Signaling: signaling.Config{JoinRate: 0.001, JoinBurst: 3}})
	url := "ws" + strings.TrimPrefix(s.URL(), "http") + "/ws"
	for i := 0; i < 3; i++ {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("connection %d within the burst: %v", i, err)
		}
		c.Close()
	}
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("connection past the burst: %v (%v), want 429", err, resp)
	}
}

// A room refuses participants past its maximum with room_full.
func TestMaxParticipantsPerRoom(t *testing.T) {
	s := startTestServer(t, Config{Signaling: signaling.Config{MaxParticipants: 2}})
	dialWS(t, s).joinAs(s, "a", "r")
	dialWS(t, s).joinAs(s, "b", "r")
	c := dialWS(t, s)
	key, secret, _ := s.DevKey()
	c.sendMsg(&protocol.Join{Version: protocol.Version, Token: mintToken(t, key, secret, "c", "r")})
	c.waitError(protocol.CodeRoomFull)
	var ce *websocket.CloseError
	_, _, err := c.ws.ReadMessage()
	if !asCloseError(err, &ce) || ce.Code != protocol.ClosePolicy {
		t.Errorf("room full ended with %v, want close %d", err, protocol.ClosePolicy)
	}
	// Another room is unaffected.
	dialWS(t, s).joinAs(s, "c", "other")
}

func asCloseError(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	if ok {
		*ce = e
	}
	return ok
}

// Close frames carry a code and a reason: on leave, on the join deadline
// and on shutdown (where they tell the client to reconnect).
func TestCloseFramesCarryReasons(t *testing.T) {
	s := startTestServer(t, Config{Signaling: signaling.Config{JoinTimeout: 300 * time.Millisecond}})
	closeOf := func(c *wsClient) *websocket.CloseError {
		_ = c.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			_, _, err := c.ws.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if !asCloseError(err, &ce) {
					t.Fatalf("connection ended without a close frame: %v", err)
				}
				return ce
			}
		}
	}
	late := dialWS(t, s)
	if ce := closeOf(late); ce.Code != protocol.ClosePolicy || ce.Text != protocol.CodeJoinTimeout {
		t.Errorf("join timeout closed with %d %q", ce.Code, ce.Text)
	}
	leaver := dialWS(t, s)
	leaver.joinAs(s, "leaver", "r")
	leaver.sendMsg(&protocol.Leave{})
	if ce := closeOf(leaver); ce.Code != protocol.CloseNormal || ce.Text == "" {
		t.Errorf("leave closed with %d %q", ce.Code, ce.Text)
	}
	stayer := dialWS(t, s)
	stayer.joinAs(s, "stayer", "r")
	go s.Close()
	if ce := closeOf(stayer); ce.Code != protocol.CloseServiceRestart || !strings.Contains(ce.Text, "reconnect") {
		t.Errorf("shutdown closed with %d %q", ce.Code, ce.Text)
	}
}

// Idle keep-alive HTTP connections are closed by the server.
func TestHTTPIdleTimeout(t *testing.T) {
	s := startTestServer(t, Config{HTTPIdleTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", s.listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := conn.Read(buf); err != nil {
			var ne net.Error
			if errorsAs(err, &ne) && ne.Timeout() {
				t.Fatal("an idle keep-alive connection stayed open")
			}
			return // closed by the server
		}
	}
}

func errorsAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}
