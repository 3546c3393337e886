package node_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// overloadLinkBytes is the relay links' byte bound in
// TestClusterRelayOverloadIsNotRoomMoved: room under the join's messages,
// under a long chat message (4000 four-byte code points).
const overloadLinkBytes = 12 << 10

// TestClusterRelayOverloadIsNotRoomMoved: a relayed participant whose link
// overflows (here: a chat message larger than the link's byte bound, sent
// by someone on the room's node) is closed with CloseOverloaded, not with
// "room moved", and the SDK reconnects after the overload wait, longer
// each time it meets the same overload (the owner replays the message on
// every resume), instead of within the room-moved spread.
func TestClusterRelayOverloadIsNotRoomMoved(t *testing.T) {
	rs := redistest.Start(t)
	nodes := startClusterNodesWith(t, rs, 2, func(c *node.Config) { c.ClusterLinkQueueBytes = overloadLinkBytes })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const room = "overload"
	anchor, err := sdk.Join(ctx, nodes[0].URL(), clusterToken(t, nodes[0], "anchor", room), sdk.Options{NoAutoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer anchor.Leave()
	o := owners(nodes, room)
	if len(o) != 1 {
		t.Fatalf("room served by %v", o)
	}
	owner, edge := nodes[o[0]], nodes[1-o[0]]
	speaker := anchor // on the room's node, so that only the roamer's link carries its chat
	if owner != nodes[0] {
		if speaker, err = sdk.Join(ctx, owner.URL(), clusterToken(t, owner, "speaker", room), sdk.Options{NoAutoReconnect: true}); err != nil {
			t.Fatal(err)
		}
		defer speaker.Leave()
	}

	var mu sync.Mutex
	var causes []error
	rec := &waitRecorder{}
	roamer, err := sdk.Join(ctx, edge.URL(), clusterToken(t, edge, "roamer", room), sdk.Options{
		Logger:           slog.New(rec),
		ReconnectTimeout: time.Minute,
		OnReconnecting: func(cause error) {
			mu.Lock()
			causes = append(causes, cause)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer roamer.Leave()

	if _, err := speaker.SendChat(ctx, strings.Repeat("😀", protocol.MaxChatLen)); err != nil {
		t.Fatal(err)
	}
	sdktest.WaitFor(t, 30*time.Second, func() string { return "two overload reconnects: " + rec.String() }, func() bool { return len(rec.waits()) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	if len(causes) == 0 {
		t.Fatal("the roamer never started reconnecting")
	}
	var ce *websocket.CloseError
	if !errors.As(causes[0], &ce) || ce.Code != protocol.CloseOverloaded {
		t.Fatalf("the roamer's connection ended with %v, want close %d", causes[0], protocol.CloseOverloaded)
	}
	w := rec.waits()
	if w[0].base != protocol.OverloadWait || w[1].base != 2*protocol.OverloadWait {
		t.Errorf("overload backoff bases %v then %v, want %v then %v", w[0].base, w[1].base, protocol.OverloadWait, 2*protocol.OverloadWait)
	}
	for _, x := range w[:2] {
		if x.in < x.base/2 || x.in > x.base {
			t.Errorf("reconnect wait %v for base %v: want within [%v, %v]", x.in, x.base, x.base/2, x.base)
		}
	}
	if rec.roomMoved() {
		t.Error("the SDK treated the overload as a moved room")
	}
}

// waitRecorder is a slog.Handler keeping the SDK's reconnect decisions.
type waitRecorder struct {
	mu    sync.Mutex
	w     []overloadWait
	moved bool
	log   []string
}

type overloadWait struct{ in, base time.Duration }

func (r *waitRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *waitRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *waitRecorder) WithGroup(string) slog.Handler            { return r }

func (r *waitRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var w overloadWait
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "in":
			w.in = a.Value.Duration()
		case "backoff":
			w.base = a.Value.Duration()
		}
		return true
	})
	switch rec.Message {
	case "relay overloaded; reconnecting":
		r.w = append(r.w, w)
	case "room moved; reconnecting":
		r.moved = true
	}
	if len(r.log) < 50 {
		r.log = append(r.log, rec.Message)
	}
	return nil
}

func (r *waitRecorder) waits() []overloadWait {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]overloadWait(nil), r.w...)
}

func (r *waitRecorder) roomMoved() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.moved
}

func (r *waitRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.log, "; ")
}
