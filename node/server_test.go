package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func startTestServer(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.HTTPAddr, cfg.MediaUDPAddr, cfg.MediaTCPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if os.Getenv("HUDDLE_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestDevTokenOnlyForLoopbackWithoutProxy(t *testing.T) {
	s := startTestServer(t, Config{})
	try := func(remote string, hdr map[string]string, query string) int {
		r := httptest.NewRequest(http.MethodGet, "/api/dev/token?"+query, nil)
		r.RemoteAddr = remote
		r.Host = "localhost:7880"
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		s.handleDevToken(w, r)
		return w.Code
	}
	if c := try("127.0.0.1:5000", nil, "name=Ann&room=r"); c != http.StatusOK {
		t.Errorf("loopback: %d, want 200", c)
	}
	if c := try("[::1]:5000", nil, "name=Ann&room=r"); c != http.StatusOK {
		t.Errorf("ipv6 loopback: %d, want 200", c)
	}
	// httptest requests travel nowhere: these addresses are only strings.
	if c := try("203.0.113.7:5000", nil, "name=Ann&room=r"); c != http.StatusForbidden {
		t.Errorf("remote: %d, want 403", c)
	}
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"} {
		if c := try("127.0.0.1:5000", map[string]string{h: "203.0.113.7"}, "name=Ann&room=r"); c != http.StatusForbidden {
			t.Errorf("loopback via proxy (%s): %d, want 403", h, c)
		}
	}
	for _, q := range []string{"room=r", "name=Ann", "name=" + strings.Repeat("x", 65) + "&room=r", "name=a%01b&room=r"} {
		if c := try("127.0.0.1:5000", nil, q); c != http.StatusBadRequest {
			t.Errorf("query %q: %d, want 400", q, c)
		}
	}

	prod := startTestServer(t, Config{APIKeys: auth.Keys{"k": "s"}})
	r := httptest.NewRequest(http.MethodGet, "/api/dev/token?name=a&room=r", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Host = "localhost:7880"
	w := httptest.NewRecorder()
	prod.handleDevToken(w, r)
	if w.Code != http.StatusNotFound {
		t.Errorf("dev token with keys configured: %d, want 404", w.Code)
	}
	var health map[string]any
	resp, err := http.Get(prod.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&health)
	if health["devMode"] != false {
		t.Errorf("healthz devMode = %v with keys configured", health["devMode"])
	}
}

func TestDevKeySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	a := startTestServer(t, Config{DataDir: dir})
	k1, _, _ := a.DevKey()
	a.Close()
	b := startTestServer(t, Config{DataDir: dir})
	k2, _, _ := b.DevKey()
	if k1 == "" || k1 != k2 {
		t.Errorf("dev key changed across restart: %q -> %q", k1, k2)
	}
}

type wsClient struct {
	t      *testing.T
	ws     *websocket.Conn
	pumped chan pumpedMsg // set by pump: a goroutine reads for waitFor
}

type pumpedMsg struct {
	data []byte
	err  error
}

// pump reads in the background (answering pings) for a client the test
// keeps busy writing; waitFor then takes messages from it.
func (c *wsClient) pump() {
	c.pumped = make(chan pumpedMsg, 100000)
	_ = c.ws.SetReadDeadline(time.Time{})
	go func() {
		for {
			_, data, err := c.ws.ReadMessage()
			c.pumped <- pumpedMsg{data, err}
			if err != nil {
				return
			}
		}
	}()
}

func (c *wsClient) next() ([]byte, error) {
	if c.pumped == nil {
		_ = c.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, data, err := c.ws.ReadMessage()
		return data, err
	}
	select {
	case m := <-c.pumped:
		return m.data, m.err
	case <-time.After(60 * time.Second):
		return nil, errors.New("nothing for 60s")
	}
}

func dialWS(t *testing.T, s *Node) *wsClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL(), "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &wsClient{t: t, ws: ws}
}

func (c *wsClient) joinAs(s *Node, identity, room string) *protocol.Joined {
	c.t.Helper()
	key, secret, _ := s.DevKey()
	tok, err := auth.Mint(key, secret, auth.Claims{Identity: identity, Name: identity, Room: room, Grants: protocol.AllGrants()}, time.Hour)
	if err != nil {
		c.t.Fatal(err)
	}
	data, _ := protocol.Encode(&protocol.Join{Version: protocol.Version, Token: tok})
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		c.t.Fatal(err)
	}
	m := c.waitFor(func(m any) bool { _, ok := m.(*protocol.Joined); return ok })
	return m.(*protocol.Joined)
}

// waitFor reads until a message matches; it fails if the connection ends.
func (c *wsClient) waitFor(match func(any) bool) any {
	c.t.Helper()
	for {
		data, err := c.next()
		if err != nil {
			c.t.Fatalf("connection ended while waiting: %v", err)
		}
		m, err := protocol.Decode(data)
		if err != nil {
			c.t.Fatalf("undecodable %s", data)
		}
		if match(m) {
			return m
		}
	}
}

// closed reports whether the server ended the connection (reading until
// it does or until the deadline).
func (c *wsClient) closedWithin(d time.Duration) bool {
	_ = c.ws.SetReadDeadline(time.Now().Add(d))
	for {
		if _, _, err := c.ws.ReadMessage(); err != nil {
			var te interface{ Timeout() bool }
			return !(errors.As(err, &te) && te.Timeout())
		}
	}
}

func TestSameIdentityReplacesOldSession(t *testing.T) {
	s := startTestServer(t, Config{})
	watcher := dialWS(t, s)
	watcher.joinAs(s, "watcher", "r")
	first := dialWS(t, s)
	j1 := first.joinAs(s, "ann", "r")
	second := dialWS(t, s)
	j2 := second.joinAs(s, "ann", "r")

	e := first.waitFor(func(m any) bool { _, ok := m.(*protocol.Error); return ok }).(*protocol.Error)
	if e.Code != protocol.CodeReplaced {
		t.Errorf("old session got %q, want replaced", e.Code)
	}
	if !first.closedWithin(10 * time.Second) {
		t.Error("replaced connection stayed open")
	}
	left := watcher.waitFor(func(m any) bool { _, ok := m.(*protocol.ParticipantLeft); return ok }).(*protocol.ParticipantLeft)
	if left.ParticipantID != j1.Participant.ID {
		t.Errorf("participantLeft for %s, want the old session %s", left.ParticipantID, j1.Participant.ID)
	}
	if len(j2.Participants) != 1 || j2.Participants[0].Identity != "watcher" {
		t.Errorf("new session sees %+v, want only the watcher", j2.Participants)
	}
}

func TestSilentConnectionsAreDropped(t *testing.T) {
	s := startTestServer(t, Config{Signaling: signaling.Config{PingInterval: 50 * time.Millisecond, PongTimeout: 300 * time.Millisecond, JoinTimeout: 300 * time.Millisecond, ResumeGrace: 300 * time.Millisecond}})

	never := dialWS(t, s) // never joins
	if !never.closedWithin(10 * time.Second) {
		t.Error("a connection that never joined was kept")
	}

	watcher := dialWS(t, s)
	watcher.joinAs(s, "watcher", "r")
	silent := dialWS(t, s)
	j := silent.joinAs(s, "silent", "r")
	// From here the silent client reads nothing, so it answers no pings.
	// The watcher keeps reading (and so answering pings) while it waits:
	// first the silent one is shown offline (it may still resume), then,
	// after the grace period, it leaves.
	watcher.waitFor(func(m any) bool {
		p, ok := m.(*protocol.PresenceChanged)
		return ok && p.ParticipantID == j.Participant.ID && p.State == protocol.PresenceOffline && p.Reconnecting
	})
	watcher.waitFor(func(m any) bool {
		l, ok := m.(*protocol.ParticipantLeft)
		return ok && l.ParticipantID == j.Participant.ID
	})
}

func mintToken(t *testing.T, key, secret, identity, room string) string {
	t.Helper()
	return mintTokenGrants(t, key, secret, identity, room, protocol.AllGrants())
}

func mintTokenGrants(t *testing.T, key, secret, identity, room string, g protocol.Grants) string {
	t.Helper()
	tok, err := auth.Mint(key, secret, auth.Claims{Identity: identity, Name: identity, Room: room, Grants: g}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func itoa(i int) string { return strconv.Itoa(i) }
