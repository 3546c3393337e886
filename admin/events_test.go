package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// sseClient reads one Server-Sent Events stream.
type sseClient struct {
	resp   *http.Response
	cancel context.CancelFunc
	lines  chan string
}

func openSSE(t *testing.T, url, token, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{resp: resp, cancel: cancel, lines: make(chan string, 1024)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) close() { c.cancel(); c.resp.Body.Close() }

type sseEvent struct {
	id, typ string
	ev      admin.Event
}

// next returns the next event (skipping comments and the periodic
// participants_quality figures, which these tests do not follow), or
// fails after 20 s.
func (c *sseClient) next(t *testing.T) sseEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if e := c.nextAny(t); e.typ != admin.ParticipantsQuality {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatal("no event but participants_quality within 20s")
		}
	}
}

// nextAny returns the next event of any type (skipping comments), or
// fails after 20 s.
func (c *sseClient) nextAny(t *testing.T) sseEvent {
	t.Helper()
	var e sseEvent
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatal("stream ended")
			}
			switch {
			case strings.HasPrefix(l, "id: "):
				e.id = strings.TrimPrefix(l, "id: ")
			case strings.HasPrefix(l, "event: "):
				e.typ = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &e.ev)
			case l == "" && e.typ != "":
				return e
			}
		case <-timeout:
			t.Fatal("no event within 20s")
		}
	}
}

// until reads events until one of type typ (for room), returning them all.
func (c *sseClient) until(t *testing.T, typ, room string) []sseEvent {
	t.Helper()
	var out []sseEvent
	for {
		e := c.next(t)
		out = append(out, e)
		if e.typ == typ && e.ev.Room == room {
			return out
		}
	}
}

func serverAdminToken(t *testing.T, srv *node.Node) string {
	g := protocol.Grants{RoomAdmin: true}
	return sdktest.Token(t, srv, "ops", admin.AllRooms, g)
}

// A stream client that drops and comes back with Last-Event-ID gets
// exactly the events it missed: none twice, none lost, in order.
func TestEventStreamResumesWithLastEventID(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := srv.URL() + "/api/v1/events"
	tok := serverAdminToken(t, srv)
	first := openSSE(t, url, tok, "")
	alice := sdktest.Join(t, ctx, srv, "alice", "s1", sdk.Options{})
	seen := first.until(t, admin.ParticipantJoined, "s1")
	last := seen[len(seen)-1].id
	first.close()

	// What happens while it is away. The API's removals and closes are
	// synchronous, so the history is complete when they return.
	sdktest.Join(t, ctx, srv, "bob", "s1", sdk.Options{})
	sdktest.Join(t, ctx, srv, "carol", "s2", sdk.Options{})
	api := adminClient(srv)
	if err := api.RemoveParticipant(ctx, "s1", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := api.CloseRoom(ctx, "s2"); err != nil {
		t.Fatal(err)
	}
	_ = alice

	lastN, _ := strconv.ParseUint(last, 10, 64)
	var want []string
	for _, e := range srv.Events().History() {
		if e.ID > lastN {
			want = append(want, strconv.FormatUint(e.ID, 10)+" "+e.Type+" "+e.Room)
		}
	}
	again := openSSE(t, url, tok, last)
	var got []string
	for len(got) < len(want) {
		e := again.next(t)
		got = append(got, e.id+" "+e.typ+" "+e.ev.Room)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after Last-Event-ID %s got\n%s\nwant\n%s", last, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(want) < 6 {
		t.Errorf("only %d events were missed; the script makes at least 6", len(want))
	}
	// Nothing more: a new event comes next, not a duplicate.
	sdktest.Join(t, ctx, srv, "dave", "s3", sdk.Options{})
	if e := again.next(t); e.typ != admin.RoomStarted || e.ev.Room != "s3" {
		t.Errorf("after the replay came %s %s, want the new room_started", e.typ, e.ev.Room)
	}
}

// A room's stream, open to its participants, carries that room only; a
// resume from before the bounded history starts with a reset; idle
// streams get heartbeats.
func TestRoomStreamHistoryResetAndHeartbeat(t *testing.T) {
	srv := sdktest.StartWith(t, func(c *node.Config) { c.EventHistory, c.EventHeartbeat = 4, 50*time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	member := sdktest.Token(t, srv, "watcher", "mine", protocol.Grants{})
	stream := openSSE(t, srv.URL()+"/api/v1/rooms/mine/events", member, "")
	sdktest.Join(t, ctx, srv, "x", "other", sdk.Options{})
	sdktest.Join(t, ctx, srv, "y", "mine", sdk.Options{})
	for _, e := range stream.until(t, admin.ParticipantJoined, "mine") {
		if e.ev.Room != "mine" {
			t.Errorf("room stream carried %s of room %q", e.typ, e.ev.Room)
		}
	}
	if st, _ := call(t, srv.URL(), endpoint{"GET", "/api/v1/rooms/other/events", "", false}, "Bearer "+member); st != http.StatusForbidden {
		t.Errorf("another room's stream: %d, want 403", st)
	}
	heartbeat := false
	for deadline := time.After(20 * time.Second); !heartbeat; {
		select {
		case l := <-stream.lines:
			heartbeat = strings.HasPrefix(l, ": heartbeat")
		case <-deadline:
			t.Fatal("no heartbeat")
		}
	}
	for i := range 6 { // more events than the history keeps
		sdktest.Join(t, ctx, srv, "z"+strconv.Itoa(i), "other", sdk.Options{})
	}
	resumed := openSSE(t, srv.URL()+"/api/v1/events", serverAdminToken(t, srv), "1")
	if e := resumed.next(t); e.typ != "reset" {
		t.Errorf("resume from before the history began with %q, want reset", e.typ)
	}
}
