package signaling

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// chatStores opens each ChatStore with small caps (max messages, max
// client ids per room) so that the caps are reached quickly.
func chatStores(t *testing.T, max, ids int) map[string]ChatStore {
	b, err := OpenBoltChatStore(filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	b.max, b.idLimit = max, ids
	t.Cleanup(func() { b.Close() })
	r := NewRedisChatStore(redistest.Start(t).Client(), RedisChatOptions{})
	r.max, r.idLimit = max, ids
	return map[string]ChatStore{"bolt": b, "redis": r}
}

func chatMsg(identity, cid, text string) protocol.ChatMessage {
	return protocol.ChatMessage{ClientID: cid, From: "P_" + identity, Identity: identity, Name: identity, Text: text, TS: 1700000000123}
}

// TestChatStores: both stores keep the newest max messages per room,
// assign ids, answer a resend (same identity and client id) with the
// stored message, never deduplicate messages without a client id, and
// forget the oldest client ids past their cap.
func TestChatStores(t *testing.T) {
	for name, s := range chatStores(t, 5, 3) {
		t.Run(name, func(t *testing.T) {
			first, dup, err := s.Post("r", chatMsg("ann", "c1", "hello"))
			if err != nil || dup || first.ID == "" || first.Text != "hello" || first.TS != 1700000000123 {
				t.Fatalf("post: %+v %v %v", first, dup, err)
			}
			again, dup, err := s.Post("r", chatMsg("ann", "c1", "hello (resent)"))
			if err != nil || !dup || again != first {
				t.Fatalf("resend: %+v %v %v, want %+v", again, dup, err, first)
			}
			if _, dup, _ := s.Post("r", chatMsg("bob", "c1", "same id, other sender")); dup {
				t.Fatal("another sender's client id counted as a resend")
			}
			for i := 0; i < 2; i++ {
				if _, dup, _ := s.Post("r", chatMsg("ann", "", "no id")); dup {
					t.Fatal("a message without client id deduplicated")
				}
			}
			for i := 2; i <= 5; i++ { // c1 is now past the 3 remembered ids
				if _, _, err := s.Post("r", chatMsg("ann", fmt.Sprint("c", i), fmt.Sprint("m", i))); err != nil {
					t.Fatal(err)
				}
			}
			if _, dup, _ := s.Post("r", chatMsg("ann", "c1", "forgotten")); dup {
				t.Fatal("a client id past the cap is still remembered")
			}
			h, err := s.History("r")
			if err != nil || len(h) != 5 {
				t.Fatalf("history: %d messages, %v", len(h), err)
			}
			want := []string{"m2", "m3", "m4", "m5", "forgotten"}
			for i, m := range h {
				if m.Text != want[i] {
					t.Fatalf("history %d: %q, want %q", i, m.Text, want[i])
				}
			}
			if h, _ := s.History("other"); len(h) != 0 {
				t.Fatalf("history of an empty room: %+v", h)
			}
		})
	}
}

// TestRedisChatFailover: the room's next owner (another store on the same
// Redis) recognises a message the old one stored, and the old owner,
// fenced, cannot post.
func TestRedisChatFailover(t *testing.T) {
	rdb := redistest.Start(t).Client()
	setOwner := func(epoch int) {
		t.Helper()
		if err := rdb.HSet(context.Background(), collab.RoomOwnerKey("r"), "node", "n", "epoch", epoch).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var ea, eb atomic.Uint64
	fence := func(e *atomic.Uint64) func(string) (uint64, bool) {
		return func(string) (uint64, bool) { v := e.Load(); return v, v != 0 }
	}
	a := NewRedisChatStore(rdb, RedisChatOptions{Fence: fence(&ea)})
	b := NewRedisChatStore(rdb, RedisChatOptions{Fence: fence(&eb)})
	if _, _, err := a.Post("r", chatMsg("ann", "c1", "x")); !errors.Is(err, collab.ErrFenced) {
		t.Fatalf("post with no epoch held: %v", err)
	}
	setOwner(1)
	ea.Store(1)
	m, _, err := a.Post("r", chatMsg("ann", "c1", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	setOwner(2)
	eb.Store(2)
	if _, _, err := a.Post("r", chatMsg("ann", "c2", "from the old owner")); !errors.Is(err, collab.ErrFenced) {
		t.Fatalf("old owner's post: %v", err)
	}
	again, dup, err := b.Post("r", chatMsg("ann", "c1", "hello"))
	if err != nil || !dup || again != m {
		t.Fatalf("resend to the new owner: %+v %v %v", again, dup, err)
	}
	if h, _ := b.History("r"); len(h) != 1 || h[0] != m {
		t.Fatalf("history on the new owner: %+v", h)
	}
}

// TestRedisChatOutage: with redis-server killed a post fails with
// collab.ErrUnavailable (nothing is broadcast); after the restart the
// history holds what was acknowledged before, and posts succeed again.
func TestRedisChatOutage(t *testing.T) {
	srv := redistest.Start(t)
	s := NewRedisChatStore(srv.Client(), RedisChatOptions{Timeout: time.Second})
	m, _, err := s.Post("r", chatMsg("ann", "c1", "before"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if _, _, err := s.Post("r", chatMsg("ann", "c2", "during")); !errors.Is(err, collab.ErrUnavailable) {
		t.Fatalf("post while redis is down: %v", err)
	}
	srv.Restart()
	if _, _, err := s.Post("r", chatMsg("ann", "c3", "after")); err != nil {
		t.Fatalf("post after restart: %v", err)
	}
	h, err := s.History("r")
	if err != nil || len(h) != 2 || h[0] != m || h[1].Text != "after" {
		t.Fatalf("history after restart: %+v %v", h, err)
	}
}
