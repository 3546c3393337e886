package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/netgate"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func dialVia(t *testing.T, g *netgate.Gate) *wsClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+g.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &wsClient{t: t, ws: ws}
}

// joinWith sends a join (with resume fields) and returns the joined.
func (c *wsClient) joinWith(s *Node, identity, room, sessionID string, lastSeq uint64) *protocol.Joined {
	c.t.Helper()
	key, secret, _ := s.DevKey()
	c.sendMsg(&protocol.Join{Version: protocol.Version, Token: mintToken(c.t, key, secret, identity, room), SessionID: sessionID, LastSeq: lastSeq})
	return c.waitFor(func(m any) bool { _, ok := m.(*protocol.Joined); return ok }).(*protocol.Joined)
}

// A participant whose connection dies without a close frame is shown
// offline to the others within the configured deadline (PongTimeout).
func TestDeadConnectionShownOffline(t *testing.T) {
	s := startTestServer(t, Config{Signaling: signaling.Config{PingInterval: 200 * time.Millisecond, PongTimeout: time.Second}})
	watcher := dialWS(t, s)
	watcher.joinAs(s, "watcher", "r")
	g := netgate.Start(t, s.listener.Addr().String())
	victim := dialVia(t, g)
	j := victim.joinAs(s, "victim", "r")
	// Keep the victim answering pings until the cut.
	go func() {
		for {
			if _, _, err := victim.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	cutAt := time.Now()
	g.Freeze()
	m := watcher.waitFor(func(m any) bool {
		pc, ok := m.(*protocol.PresenceChanged)
		return ok && pc.ParticipantID == j.Participant.ID
	}).(*protocol.PresenceChanged)
	if m.State != protocol.PresenceOffline || !m.Reconnecting {
		t.Errorf("presence after the cut: %+v, want offline and reconnecting", m.Presence)
	}
	// Last seen is when the server last heard from the victim: before the
	// cut, not when it noticed.
	if m.LastSeen == 0 || m.LastSeen > cutAt.UnixMilli() {
		t.Errorf("lastSeen %d, want at or before the cut %d", m.LastSeen, cutAt.UnixMilli())
	}
}

// A participant that drops and resumes within the grace period keeps its
// id, and receives the chat sent meanwhile exactly once; the others see it
// reconnecting and back, never leaving.
func TestResumeReplaysMissedChatOnce(t *testing.T) {
	s := startTestServer(t, Config{})
	other := dialWS(t, s)
	other.joinAs(s, "other", "r")
	ann := dialWS(t, s)
	j := ann.joinAs(s, "ann", "r")
	other.sendMsg(&protocol.Chat{ClientID: "before", Text: "before the drop"})
	var lastSeq uint64
	_ = ann.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for lastSeq == 0 {
		_, data, err := ann.ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m, seq, _ := protocol.DecodeEvent(data); seq > 0 {
			if c, ok := m.(*protocol.ChatMessage); ok && c.ClientID == "before" {
				lastSeq = seq
			}
		}
	}
	// The connection dies abruptly: the client side is closed without a
	// close frame, the server notices at once (TCP reset).
	ann.ws.UnderlyingConn().Close()
	other.waitFor(func(m any) bool {
		pc, ok := m.(*protocol.PresenceChanged)
		return ok && pc.ParticipantID == j.Participant.ID && pc.Reconnecting
	})
	for i := 0; i < 3; i++ {
		other.sendMsg(&protocol.Chat{ClientID: fmt.Sprint("missed-", i), Text: fmt.Sprint("while away ", i)})
	}
	other.waitFor(func(m any) bool { c, ok := m.(*protocol.ChatMessage); return ok && c.ClientID == "missed-2" })

	again := dialWS(t, s)
	rj := again.joinWith(s, "ann", "r", j.SessionID, lastSeq)
	if !rj.Resumed || !rj.Replayed || rj.Participant.ID != j.Participant.ID {
		t.Fatalf("resume: resumed=%v replayed=%v id %s (was %s)", rj.Resumed, rj.Replayed, rj.Participant.ID, j.Participant.ID)
	}
	// Everything after lastSeq, in order, each once: then a marker.
	other.sendMsg(&protocol.Chat{ClientID: "after", Text: "after the resume"})
	var got []string
	again.waitFor(func(m any) bool {
		c, ok := m.(*protocol.ChatMessage)
		if ok {
			got = append(got, c.ClientID)
		}
		return ok && c.ClientID == "after"
	})
	if strings.Join(got, ",") != "missed-0,missed-1,missed-2,after" {
		t.Errorf("chat after resume: %v, want each missed message once, in order", got)
	}
	// The others saw it come back, and never leave.
	other.waitFor(func(m any) bool {
		if l, ok := m.(*protocol.ParticipantLeft); ok && l.ParticipantID == j.Participant.ID {
			t.Fatal("the others saw the resuming participant leave")
		}
		pc, ok := m.(*protocol.PresenceChanged)
		return ok && pc.ParticipantID == j.Participant.ID && pc.State == protocol.PresenceOnline && !pc.Reconnecting
	})
}

// When the events a client missed are no longer in the room's log, the
// resume carries a snapshot: everyone, and the chat history.
func TestResumeWithTruncatedLogGetsSnapshot(t *testing.T) {
	s := startTestServer(t, Config{Signaling: signaling.Config{EventLogLen: 4}})
	other := dialWS(t, s)
	other.joinAs(s, "other", "r")
	ann := dialWS(t, s)
	j := ann.joinAs(s, "ann", "r")
	ann.ws.UnderlyingConn().Close()
	other.waitFor(func(m any) bool { pc, ok := m.(*protocol.PresenceChanged); return ok && pc.Reconnecting })
	for i := 0; i < 6; i++ {
		other.sendMsg(&protocol.Chat{ClientID: fmt.Sprint(i), Text: fmt.Sprint("msg ", i)})
	}
	other.waitFor(func(m any) bool { c, ok := m.(*protocol.ChatMessage); return ok && c.ClientID == "5" })
	rj := dialWS(t, s).joinWith(s, "ann", "r", j.SessionID, j.Seq)
	if !rj.Resumed || rj.Replayed || rj.Participant.ID != j.Participant.ID {
		t.Fatalf("resume: resumed=%v replayed=%v", rj.Resumed, rj.Replayed)
	}
	if len(rj.Participants) != 1 || rj.Participants[0].Identity != "other" || len(rj.Chat) != 6 {
		t.Errorf("snapshot: participants %+v, %d chat messages (want other, 6)", rj.Participants, len(rj.Chat))
	}
}

// After the grace period the session is gone: a resume joins afresh (new
// participant id), and the others saw the old one leave.
func TestResumeAfterGraceJoinsAfresh(t *testing.T) {
	s := startTestServer(t, Config{Signaling: signaling.Config{ResumeGrace: 200 * time.Millisecond}})
	other := dialWS(t, s)
	other.joinAs(s, "other", "r")
	ann := dialWS(t, s)
	j := ann.joinAs(s, "ann", "r")
	ann.ws.UnderlyingConn().Close()
	other.waitFor(func(m any) bool {
		l, ok := m.(*protocol.ParticipantLeft)
		return ok && l.ParticipantID == j.Participant.ID
	})
	rj := dialWS(t, s).joinWith(s, "ann", "r", j.SessionID, j.Seq)
	if rj.Resumed || rj.Participant.ID == j.Participant.ID {
		t.Errorf("resume after the grace period: resumed=%v id %s", rj.Resumed, rj.Participant.ID)
	}
}

// Chat is stored: a late joiner and a restarted server have the history; a
// resend with the same client id is stored once.
func TestChatHistoryAndDedup(t *testing.T) {
	dir := t.TempDir()
	s := startTestServer(t, Config{DataDir: dir})
	a := dialWS(t, s)
	a.joinAs(s, "a", "r")
	a.sendMsg(&protocol.Chat{ClientID: "c1", Text: "hello 👋"})
	first := a.waitFor(func(m any) bool { _, ok := m.(*protocol.ChatMessage); return ok }).(*protocol.ChatMessage)
	a.sendMsg(&protocol.Chat{ClientID: "c1", Text: "hello 👋"}) // resent after a doubt
	second := a.waitFor(func(m any) bool { _, ok := m.(*protocol.ChatMessage); return ok }).(*protocol.ChatMessage)
	if first.ID == "" || second.ID != first.ID || first.TS == 0 || first.From == "" {
		t.Errorf("resend got %+v after %+v: want the same stored message", second, first)
	}
	late := dialWS(t, s).joinAs(s, "late", "r")
	if len(late.Chat) != 1 || late.Chat[0].ID != first.ID {
		t.Errorf("late joiner history: %+v", late.Chat)
	}
	s.Close()
	s2 := startTestServer(t, Config{DataDir: dir})
	j := dialWS(t, s2).joinAs(s2, "after-restart", "r")
	if len(j.Chat) != 1 || j.Chat[0].Text != "hello 👋" {
		t.Errorf("history after a restart: %+v", j.Chat)
	}
	// Without publishData, chat is refused.
	c := dialWS(t, s2)
	key, secret, _ := s2.DevKey()
	c.sendMsg(&protocol.Join{Version: protocol.Version, Token: mintTokenGrants(t, key, secret, "mute", "r", protocol.Grants{Subscribe: true})})
	c.waitFor(func(m any) bool { _, ok := m.(*protocol.Joined); return ok })
	c.sendMsg(&protocol.Chat{ClientID: "x", Text: "let me in"})
	c.waitError(protocol.CodeForbidden)
}

// Presence: away with a custom status and last seen; typing reaches the
// others with its expiry and is rate limited; a long status is refused.
func TestPresenceAwayStatusAndTyping(t *testing.T) {
	s := startTestServer(t, Config{})
	a := dialWS(t, s)
	ja := a.joinAs(s, "a", "r")
	b := dialWS(t, s)
	b.joinAs(s, "b", "r")
	a.sendMsg(&protocol.SetPresence{State: protocol.PresenceAway, Status: "at lunch 🍜"})
	p := b.waitFor(func(m any) bool { _, ok := m.(*protocol.PresenceChanged); return ok }).(*protocol.PresenceChanged)
	if p.ParticipantID != ja.Participant.ID || p.State != protocol.PresenceAway || p.Status != "at lunch 🍜" || p.LastSeen == 0 {
		t.Errorf("presence: %+v", p)
	}
	late := dialWS(t, s).joinAs(s, "late", "r")
	for _, q := range late.Participants {
		if q.ID == ja.Participant.ID && (q.State != protocol.PresenceAway || q.Status != "at lunch 🍜") {
			t.Errorf("a late joiner sees %+v", q.Presence)
		}
	}
	a.sendMsg(&protocol.Typing{Typing: true})
	ty := b.waitFor(func(m any) bool { _, ok := m.(*protocol.Typing); return ok }).(*protocol.Typing)
	if ty.ParticipantID != ja.Participant.ID || !ty.Typing || ty.ExpiresIn != protocol.TypingTTLMillis {
		t.Errorf("typing: %+v", ty)
	}
	a.sendMsg(&protocol.Typing{Typing: true})
	a.waitError(protocol.CodeRateLimited)
	a.sendMsg(&protocol.SetPresence{State: protocol.PresenceOnline, Status: strings.Repeat("s", protocol.MaxStatusLen+1)})
	a.waitError(protocol.CodeLimit)
	a.sendMsg(&protocol.SetPresence{State: "invisible"})
	a.waitError(protocol.CodeBadMessage)
}
