package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// startRedisServer runs a Huddle server whose documents and chat are kept
// in a real redis-server (as in cluster mode, without fencing: one node),
// which the test can kill and restart.
func startRedisServer(t *testing.T) (*node.Node, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	// ContextTimeoutEnabled: the stores' per-call timeouts reach socket
	// reads, so a call during the outage fails instead of hanging.
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	srv := startServerWith(t, func(c *node.Config) {
		c.DocStore = collab.NewRedisStore(rdb, collab.RedisStoreOptions{Timeout: 2 * time.Second})
		c.ChatStore = signaling.NewRedisChatStore(rdb, signaling.RedisChatOptions{Timeout: 2 * time.Second})
	})
	return srv, rs
}

// TestDocsSurviveStoreOutage: a bot edits a document whose server keeps it
// in Redis; redis-server is killed (SIGKILL) while the bot has edits the
// server has not acknowledged, and the bot goes on typing. The server
// refuses the in-flight edit with unavailable and drops its copy; the bot
// keeps every edit (nothing rolled back), pauses, opens the document again
// with backoff by itself and, once redis-server is back, resubmits. A
// WaitSynced started during the outage returns once everything is saved.
// In the end every edit is in the server's document exactly once (the log
// holds no client op id twice) and the bot's text is the server's. Chat
// sent during the outage gets the retryable code unavailable.
func TestDocsSurviveStoreOutage(t *testing.T) {
	srv, rs := startRedisServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	room := sdktest.Join(t, ctx, srv, "writer", "outage", sdk.Options{})
	docs := room.Docs()
	info, err := docs.Create(ctx, "notes", "start\n")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := docs.Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	var before []string
	for i := range 5 {
		w := fmt.Sprintf("<b%d>", i)
		before = append(before, w)
		if err := doc.Insert(doc.Len(), w); err != nil {
			t.Fatal(err)
		}
	}
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatalf("edits before the outage: %v", err)
	}

	rs.Kill()
	var during []string
	add := func(w string) {
		t.Helper()
		during = append(during, w)
		if err := doc.Insert(doc.Len(), w); err != nil {
			t.Fatalf("insert %s during the outage: %v", w, err)
		}
	}
	add("<d0>")
	sdktest.WaitFor(t, 20*time.Second, func() string {
		return fmt.Sprintf("the bot to pause saving (stats %+v, save error %v)", doc.Stats(), doc.SaveError())
	}, func() bool { return doc.Stats().Paused > 0 })
	if err := doc.SaveError(); !errors.Is(err, sdk.ErrSavePaused) || !sdk.IsDocError(err, protocol.DocErrUnavailable) {
		t.Fatalf("SaveError during the outage = %v, want ErrSavePaused wrapping an unavailable DocError", err)
	}
	for i := 1; i < 8; i++ {
		add(fmt.Sprintf("<d%d>", i))
	}
	if !doc.Pending() {
		t.Fatal("the edits made during the outage are not pending")
	}
	for _, w := range append(append([]string{}, before...), during...) {
		if strings.Count(doc.Text(), w) != 1 {
			t.Fatalf("the bot's text %q does not hold %s once: an edit was rolled back", doc.Text(), w)
		}
	}

	// Chat while the store is away: refused with the retryable code, after
	// the SDK's one retry.
	_, err = room.SendChat(ctx, "during the outage")
	var pe *protocol.Error
	if !errors.Is(err, sdk.ErrChatNotStored) || !errors.As(err, &pe) || pe.Code != protocol.CodeUnavailable {
		t.Fatalf("chat during the outage: %v, want ErrChatNotStored with code %s", err, protocol.CodeUnavailable)
	}

	// A WaitSynced in progress completes once the edits are saved.
	synced := make(chan error, 1)
	go func() { synced <- doc.WaitSynced(ctx) }()
	rs.Restart()
	if err := <-synced; err != nil {
		t.Fatalf("WaitSynced across the outage: %v (stats %+v)", err, doc.Stats())
	}
	if err := doc.SaveError(); err != nil {
		t.Fatalf("SaveError after the outage: %v", err)
	}

	text, _ := serverLog(t, srv.Documents(), info.ID, "start\n")
	if got := doc.Text(); got != text {
		t.Fatalf("the bot's text differs from the server's:\nbot    %q\nserver %q", got, text)
	}
	for _, w := range append(before, during...) {
		if n := strings.Count(text, w); n != 1 {
			t.Fatalf("%s is in the server's text %d times, want once: %q", w, n, text)
		}
	}
	st := doc.Stats()
	if st.Refused != 0 {
		t.Fatalf("%d edits were refused (rolled back); want none: %+v", st.Refused, st)
	}
	t.Logf("stats %+v", st)

	// Chat works again, and the message is stored once.
	m, err := room.SendChat(ctx, "after the outage")
	if err != nil {
		t.Fatalf("chat after the outage: %v", err)
	}
	if m.ID == "" {
		t.Fatal("chat after the outage has no server id")
	}
}

// TestDocsGiveUpWhenStoreStaysDown: with redis-server down for good, a
// document whose edit the server could not store tries to open again
// ReopenTries times (shortened here), then gives up: WaitSynced, ApplyOp
// and SaveError return ErrSaveFailed, the unsaved edit is still in Text(),
// and the server never stored it (a fresh open, once redis-server is back,
// does not have it).
func TestDocsGiveUpWhenStoreStaysDown(t *testing.T) {
	defer sdk.SetReopenBackoff(3, 20*time.Millisecond, 80*time.Millisecond)()
	srv, rs := startRedisServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	room := sdktest.Join(t, ctx, srv, "writer", "down", sdk.Options{})
	info, err := room.Docs().Create(ctx, "notes", "start\n")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := room.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	rs.Kill()
	if err := doc.Insert(doc.Len(), "<unsaved>"); err != nil {
		t.Fatal(err)
	}
	err = doc.WaitSynced(ctx)
	if !errors.Is(err, sdk.ErrSaveFailed) || !sdk.IsDocError(err, protocol.DocErrUnavailable) {
		t.Fatalf("WaitSynced with the store down for good: %v, want ErrSaveFailed wrapping the unavailable DocError", err)
	}
	t.Logf("gave up: %v", err)
	if st := doc.Stats(); st.Paused != 3 || st.Refused != 0 {
		t.Fatalf("stats %+v, want 3 pauses (the tries) and nothing rolled back", st)
	}
	if !strings.Contains(doc.Text(), "<unsaved>") {
		t.Fatalf("the unsaved edit is gone from Text(): %q", doc.Text())
	}
	if err := doc.Insert(0, "x"); !errors.Is(err, sdk.ErrSaveFailed) {
		t.Fatalf("Insert after giving up: %v, want ErrSaveFailed", err)
	}
	if err := doc.SaveError(); !errors.Is(err, sdk.ErrSaveFailed) {
		t.Fatalf("SaveError after giving up: %v", err)
	}

	rs.Restart()
	if err := doc.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := room.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatalf("open again once redis-server is back: %v", err)
	}
	if got := again.Text(); got != "start\n" {
		t.Fatalf("the server's text is %q, want the text before the unsaved edit", got)
	}
}

// TestDocsSurviveFencedWrites: the server's Redis store fences writes with
// the room's ownership epoch. Another node claims the room (the epoch in
// Redis moves on) while the bot types: the server's commits are refused
// (ErrFenced), the bot is told unavailable, keeps its edits and keeps
// opening the document again; once this node holds the room again (its
// fence value is the new epoch) the edits are saved, each once.
func TestDocsSurviveFencedWrites(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	const roomName = "fenced"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	owner := collab.RoomOwnerKey(roomName)
	if err := rdb.HSet(ctx, owner, "node", "this", "epoch", 1).Err(); err != nil {
		t.Fatal(err)
	}
	var epoch atomic.Uint64
	epoch.Store(1)
	fence := func(string) (uint64, bool) { return epoch.Load(), true }
	srv := startServerWith(t, func(c *node.Config) {
		c.DocStore = collab.NewRedisStore(rdb, collab.RedisStoreOptions{Fence: fence, Timeout: 2 * time.Second})
	})
	room := sdktest.Join(t, ctx, srv, "writer", roomName, sdk.Options{})
	info, err := room.Docs().Create(ctx, "notes", "start\n")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := room.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Insert(doc.Len(), "<before>"); err != nil {
		t.Fatal(err)
	}
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}

	// Another node claims the room.
	if err := rdb.HSet(ctx, owner, "node", "other", "epoch", 2).Err(); err != nil {
		t.Fatal(err)
	}
	marks := []string{"<f0>", "<f1>", "<f2>"}
	if err := doc.Insert(doc.Len(), marks[0]); err != nil {
		t.Fatal(err)
	}
	sdktest.WaitFor(t, 20*time.Second, func() string {
		return fmt.Sprintf("two refused tries (stats %+v, save error %v)", doc.Stats(), doc.SaveError())
	}, func() bool { return doc.Stats().Paused >= 2 })
	for _, w := range marks[1:] {
		if err := doc.Insert(doc.Len(), w); err != nil {
			t.Fatal(err)
		}
	}
	// This node holds the room again, at the new epoch.
	if err := rdb.HSet(ctx, owner, "node", "this").Err(); err != nil {
		t.Fatal(err)
	}
	epoch.Store(2)
	if err := doc.WaitSynced(ctx); err != nil {
		t.Fatalf("WaitSynced once the room is back: %v (stats %+v)", err, doc.Stats())
	}
	text, _ := serverLog(t, srv.Documents(), info.ID, "start\n")
	if doc.Text() != text {
		t.Fatalf("the bot's text differs from the server's:\nbot    %q\nserver %q", doc.Text(), text)
	}
	for _, w := range append([]string{"<before>"}, marks...) {
		if n := strings.Count(text, w); n != 1 {
			t.Fatalf("%s is in the server's text %d times, want once: %q", w, n, text)
		}
	}
	if st := doc.Stats(); st.Refused != 0 {
		t.Fatalf("edits rolled back: %+v", st)
	}
}
