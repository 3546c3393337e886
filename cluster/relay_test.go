package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/prometheus/client_golang/prometheus"
)

func echo(l *Link) {
	for f := range l.Frames() {
		if l.Send(f) != nil {
			return
		}
	}
}

// waitClosed waits for l to end and returns why.
func waitClosed(t *testing.T, l *Link, within time.Duration) (int, string) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(within):
		t.Fatalf("link to %s still open after %s", l.Peer(), within)
	}
	return l.CloseReason()
}

// Thousands of frames go through Redis and come back in order; the owner
// sees the first frame, room and peer the dialer gave.
func TestRelayRoundTripInOrder(t *testing.T) {
	srv := redistest.Start(t)
	accepted := make(chan *Link, 1)
	reg := prometheus.NewRegistry()
	startNode(t, srv, Config{ID: "owner", Registerer: reg, Accept: func(l *Link) {
		accepted <- l
		echo(l)
	}})
	edge := startNode(t, srv, Config{ID: "edge"})
	l, err := edge.Dial(ctxT(t), "owner", "standup", []byte(`{"type":"join"}`))
	if err != nil {
		t.Fatal(err)
	}
	al := <-accepted
	if string(al.First()) != `{"type":"join"}` || al.Room() != "standup" || al.Peer() != "edge" || l.Peer() != "owner" || l.Room() != "standup" {
		t.Fatalf("owner side: first %q room %q peer %q", al.First(), al.Room(), al.Peer())
	}
	const total = 5000
	got := make(chan error, 1)
	var received atomic.Int64
	go func() {
		for i := range total {
			f, ok := <-l.Frames()
			if !ok {
				code, reason := l.CloseReason()
				got <- fmt.Errorf("link closed after %d frames: %d %s", i, code, reason)
				return
			}
			if want := fmt.Sprintf("frame %d", i); string(f) != want {
				got <- fmt.Errorf("got %q, want %q", f, want)
				return
			}
			received.Add(1)
		}
		got <- nil
	}()
	// The relay never blocks, so the test keeps a window of frames in
	// flight well inside every queue's bound, as a client's own pace would.
	for i := range total {
		for int64(i)-received.Load() > 256 {
			time.Sleep(time.Millisecond)
		}
		if err := l.Send(fmt.Appendf(nil, "frame %d", i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("echoes did not all arrive")
	}
	if in := gather(t, reg, "huddle_cluster_relay_frames_total", "dir=in"); in != total {
		t.Fatalf("owner counted %v frames in", in)
	}
	l.Close(1000, "bye")
	if code, reason := waitClosed(t, al, 5*testTTL); code != 1000 || reason != "bye" {
		t.Fatalf("owner saw close %d %q", code, reason)
	}
	if err := l.Send([]byte("late")); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	l.Close(1001, "again") // idempotent: the first reason stays
	if code, _ := l.CloseReason(); code != 1000 {
		t.Fatalf("second Close changed the reason to %d", code)
	}
	if got := gather(t, reg, "huddle_cluster_links_open", ""); got != 0 {
		t.Fatalf("links gauge %v after close", got)
	}
}

func TestDialRefusedWithoutAccept(t *testing.T) {
	srv := redistest.Start(t)
	startNode(t, srv, Config{ID: "owner"})
	edge := startNode(t, srv, Config{ID: "edge"})
	_, err := edge.Dial(ctxT(t), "owner", "room", nil)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CodeRefused || !strings.Contains(ce.Reason, "does not accept") {
		t.Fatalf("Dial to a node without Accept: %v", err)
	}
	if st := edge.Status(); st.Links != 0 {
		t.Fatalf("%d links left after a refused dial", st.Links)
	}
}

// A node that never answers the open: Dial fails after OpenTimeout. A
// node that is not even subscribed fails at once with node gone.
func TestDialTimeoutAndNodeNotListening(t *testing.T) {
	srv := redistest.Start(t)
	edge := startNode(t, srv, Config{ID: "edge", OpenTimeout: 300 * time.Millisecond})
	mute := srv.Client().Subscribe(context.Background(), inboxKey("mute"))
	defer mute.Close()
	if _, err := mute.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := edge.Dial(ctxT(t), "mute", "room", nil)
	if !errors.Is(err, ErrOpenTimeout) || !strings.Contains(err.Error(), "mute") {
		t.Fatalf("Dial to a mute node: %v", err)
	}
	_, err = edge.Dial(ctxT(t), "nobody", "room", nil)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CodeNodeGone {
		t.Fatalf("Dial to a node nobody listens for: %v", err)
	}
	if st := edge.Status(); st.Links != 0 {
		t.Fatalf("%d links left after failed dials", st.Links)
	}
}

// Frames over the limit: refused by Send (the link stays), refused in a
// Dial, and an oversized frame arriving from a node with a larger limit
// closes the link on both sides.
func TestFrameTooLarge(t *testing.T) {
	srv := redistest.Start(t)
	accepted := make(chan *Link, 1)
	startNode(t, srv, Config{ID: "owner", MaxFrame: 1024, Accept: func(l *Link) { accepted <- l; echo(l) }})
	edge := startNode(t, srv, Config{ID: "edge", MaxFrame: 4096})
	if _, err := edge.Dial(ctxT(t), "owner", "room", make([]byte, 4097)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Dial with a huge first frame: %v", err)
	}
	_, err := edge.Dial(ctxT(t), "owner", "room", make([]byte, 2048))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CodeTooLarge {
		t.Fatalf("open with a first frame over the owner's limit: %v", err)
	}
	l, err := edge.Dial(ctxT(t), "owner", "room", nil)
	if err != nil {
		t.Fatal(err)
	}
	al := <-accepted
	if err := l.Send(make([]byte, 4097)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Send over the limit: %v", err)
	}
	if err := l.Send([]byte("small")); err != nil {
		t.Fatalf("the link did not survive a refused Send: %v", err)
	}
	if f := <-l.Frames(); string(f) != "small" {
		t.Fatalf("echo %q", f)
	}
	if err := l.Send(make([]byte, 2048)); err != nil {
		t.Fatal(err)
	}
	if code, _ := waitClosed(t, al, 5*testTTL); code != CodeTooLarge {
		t.Fatalf("owner closed with %d", code)
	}
	if code, reason := waitClosed(t, l, 5*testTTL); code != CodeTooLarge || !strings.Contains(reason, "2048") {
		t.Fatalf("edge saw %d %q", code, reason)
	}
}

// A reader that does not keep up: its queue (frames, then bytes) fills
// and the link closes with CodeOverflow on both sides.
func TestQueueOverflowClosesLink(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		frame int
	}{
		{"frames", Config{LinkQueue: 16}, 10},
		{"bytes", Config{LinkQueueBytes: 8 << 10}, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			accepted := make(chan *Link, 1)
			cfg := tc.cfg
			cfg.ID = "owner"
			cfg.Accept = func(l *Link) { accepted <- l } // never reads
			reg := prometheus.NewRegistry()
			cfg.Registerer = reg
			startNode(t, srv, cfg)
			edge := startNode(t, srv, Config{ID: "edge"})
			l, err := edge.Dial(ctxT(t), "owner", "room", nil)
			if err != nil {
				t.Fatal(err)
			}
			al := <-accepted
			for i := 0; i < 100; i++ {
				if l.Send(bytes.Repeat([]byte{'x'}, tc.frame)) != nil {
					break
				}
			}
			code, reason := waitClosed(t, al, 5*testTTL)
			if code != CodeOverflow || !strings.Contains(reason, "queue full") {
				t.Fatalf("owner closed with %d %q", code, reason)
			}
			if code, _ := waitClosed(t, l, 5*testTTL); code != CodeOverflow || !l.Overloaded() || !al.Overloaded() {
				t.Fatalf("edge saw %d (overloaded: edge %v, owner %v)", code, l.Overloaded(), al.Overloaded())
			}
			// What was queued before the overflow is still readable, and
			// never more than the bound.
			n, size := 0, 0
			for f := range al.Frames() {
				n++
				size += len(f)
			}
			if n == 0 || (cfg.LinkQueue > 0 && n > cfg.LinkQueue) || (cfg.LinkQueueBytes > 0 && size > cfg.LinkQueueBytes) {
				t.Fatalf("%d frames, %d bytes were queued", n, size)
			}
			if got := gather(t, reg, "huddle_cluster_link_closes_total", "reason=overflow"); got != 1 {
				t.Fatalf("overflow closes counted %v", got)
			}
		})
	}
}

// A sender faster than Redis: the per-link send bound closes the link
// instead of blocking or growing.
func TestSendQueueOverflow(t *testing.T) {
	srv := redistest.Start(t)
	startNode(t, srv, Config{ID: "owner", Accept: echo})
	for _, tc := range []struct {
		cfg   Config
		frame int
	}{
		{Config{ID: "edge1", LinkQueue: 4}, 1},
		{Config{ID: "edge2", LinkQueueBytes: 8 << 10}, 1000},
	} {
		edge := startNode(t, srv, tc.cfg)
		l, err := edge.Dial(ctxT(t), "owner", "room", nil)
		if err != nil {
			t.Fatal(err)
		}
		var sendErr error
		for i := 0; i < 100000 && sendErr == nil; i++ {
			sendErr = l.Send(make([]byte, tc.frame))
		}
		if !errors.Is(sendErr, ErrLinkClosed) {
			t.Fatalf("100000 Sends into a queue of %+v: %v", tc.cfg, sendErr)
		}
		if code, _ := l.CloseReason(); code != CodeOverflow {
			t.Fatalf("closed with %d", code)
		}
	}
}

// Link limits: the dialer's own limit is an error; the owner's comes back
// as a refusal.
func TestTooManyLinks(t *testing.T) {
	srv := redistest.Start(t)
	startNode(t, srv, Config{ID: "owner", MaxLinks: 2, Accept: echo})
	edge := startNode(t, srv, Config{ID: "edge", MaxLinks: 3})
	for range 2 {
		if _, err := edge.Dial(ctxT(t), "owner", "room", nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err := edge.Dial(ctxT(t), "owner", "room", nil)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CodeTooManyLinks || !ce.Overloaded() {
		t.Fatalf("third link to an owner with MaxLinks 2: %v", err)
	}
	startNode(t, srv, Config{ID: "other", Accept: echo})
	if _, err := edge.Dial(ctxT(t), "other", "room", nil); err != nil {
		t.Fatal(err)
	}
	_, err = edge.Dial(ctxT(t), "other", "room", nil)
	// Both limits are load, which the edge tells its client as such
	// (signaling: CloseOverloaded), not as a moved room.
	if !errors.Is(err, ErrTooManyLinks) || !errors.As(err, &ce) || !ce.Overloaded() {
		t.Fatalf("fourth link from an edge with MaxLinks 3: %v", err)
	}
}

// The owner crashes (its key expires, nothing is said): an idle link on
// the edge closes with CodeNodeGone within the TTL and a refresh.
func TestLinkClosedWhenPeerNodeGone(t *testing.T) {
	srv := redistest.Start(t)
	owner := startNode(t, srv, Config{ID: "owner", Accept: echo})
	edge := startNode(t, srv, Config{ID: "edge"})
	l, err := edge.Dial(ctxT(t), "owner", "room", nil)
	if err != nil {
		t.Fatal(err)
	}
	owner.crashForTest()
	if code, reason := waitClosed(t, l, 5*testTTL); code != CodeNodeGone || !strings.Contains(reason, "owner") {
		t.Fatalf("closed with %d %q", code, reason)
	}
}

// A lost message (here: one the test skips by publishing a later
// sequence number) closes the link with CodeGap instead of delivering
// out of order.
func TestGapClosesLink(t *testing.T) {
	srv := redistest.Start(t)
	accepted := make(chan *Link, 1)
	startNode(t, srv, Config{ID: "owner", Accept: func(l *Link) { accepted <- l; echo(l) }})
	edge := startNode(t, srv, Config{ID: "edge"})
	l, err := edge.Dial(ctxT(t), "owner", "room", nil)
	if err != nil {
		t.Fatal(err)
	}
	al := <-accepted
	if err := l.Send([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if f := <-l.Frames(); string(f) != "one" {
		t.Fatalf("echo %q", f)
	}
	// The edge has sent messages 0 (open) and 1; 3 skips 2.
	m := message{kind: kindFrame, dir: fromDialer, link: l.id, seq: 3, from: "edge", body: []byte("three")}
	if err := srv.Client().Publish(context.Background(), inboxKey("owner"), m.encode()).Err(); err != nil {
		t.Fatal(err)
	}
	if code, reason := waitClosed(t, al, 5*testTTL); code != CodeGap || !strings.Contains(reason, "expected message 2, got 3") {
		t.Fatalf("owner closed with %d %q", code, reason)
	}
	if code, _ := waitClosed(t, l, 5*testTTL); code != CodeGap {
		t.Fatalf("edge saw %d", code)
	}
}

// A node restarted with the same id: an idle link to its old incarnation
// is closed at the next refresh (its member key names a new incarnation).
func TestLinkClosedWhenPeerRestartsWithSameID(t *testing.T) {
	srv := redistest.Start(t)
	owner := startNode(t, srv, Config{ID: "owner", Accept: echo})
	edge := startNode(t, srv, Config{ID: "edge"})
	waitFor(t, 5*testTTL, "two members", func() bool { return len(edge.Members()) == 2 })
	l, err := edge.Dial(ctxT(t), "owner", "room", nil)
	if err != nil {
		t.Fatal(err)
	}
	owner.crashForTest()
	startNode(t, srv, Config{ID: "owner", Accept: echo})
	// "left the cluster" only if this machine stalled past the TTL
	// between the crash and the restart.
	if code, reason := waitClosed(t, l, 5*testTTL); code != CodeNodeGone || !strings.Contains(reason, "owner") {
		t.Fatalf("closed with %d %q", code, reason)
	}
}

// A frame for a link the node does not know (its sender's peer
// restarted) is answered with CodeUnknownLink, so the sender ends it.
func TestUnknownLinkAnswered(t *testing.T) {
	srv := redistest.Start(t)
	startNode(t, srv, Config{ID: "owner", Accept: echo})
	ghost := srv.Client().Subscribe(context.Background(), inboxKey("ghost"))
	defer ghost.Close()
	if _, err := ghost.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := message{kind: kindFrame, dir: fromDialer, link: 42, seq: 5, from: "ghost", body: []byte("hi")}
	if err := srv.Client().Publish(context.Background(), inboxKey("owner"), m.encode()).Err(); err != nil {
		t.Fatal(err)
	}
	msg, err := ghost.ReceiveMessage(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := decode([]byte(msg.Payload))
	if err != nil || r.kind != kindClose || r.dir != fromAcceptor || r.link != 42 || r.code != CodeUnknownLink || r.from != "owner" {
		t.Fatalf("reply %+v %v", r, err)
	}
}

func TestWireRoundTrip(t *testing.T) {
	for _, m := range []message{
		{kind: kindOpen, dir: fromDialer, link: 1<<63 + 5, seq: 0, from: "edge", room: "r", body: []byte("first")},
		{kind: kindAck, dir: fromAcceptor, link: 9, seq: 0, from: "owner"},
		{kind: kindFrame, dir: fromDialer, link: 9, seq: 1 << 40, from: "e", body: []byte{0, 1, 2}},
		{kind: kindClose, dir: fromAcceptor, link: 9, seq: 7, from: "o", code: 4003, reason: "queue full"},
	} {
		got, err := decode(m.encode())
		if err != nil {
			t.Fatal(err)
		}
		if got.kind != m.kind || got.dir != m.dir || got.link != m.link || got.seq != m.seq || got.from != m.from ||
			got.room != m.room || !bytes.Equal(got.body, m.body) || got.code != m.code || got.reason != m.reason {
			t.Fatalf("decoded %+v from %+v", got, m)
		}
		enc := m.encode()
		for i := range enc {
			if m.kind != kindFrame && m.kind != kindOpen && i > 11 {
				break
			}
			decode(enc[:i]) // must not panic
		}
	}
	// The overhead docs/CLUSTER.md quotes: a 16-character node id, a
	// sequence number past 127.
	m := message{kind: kindFrame, link: 1, seq: 1000, from: "0123456789abcdef", body: []byte(`{"type":"chat"}`)}
	if over := len(m.encode()) - len(m.body); over != 29 {
		t.Fatalf("frame header is %d bytes", over)
	}
	for _, bad := range [][]byte{nil, {9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {3, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200}} {
		if _, err := decode(bad); err == nil {
			t.Fatalf("decoded %v", bad)
		}
	}
}

// Sends, closes from both ends and arriving frames race on many links
// (run with -race): no panic, every link ends, no link is left behind.
func TestConcurrentSendAndClose(t *testing.T) {
	srv := redistest.Start(t)
	owner := startNode(t, srv, Config{ID: "owner", Accept: func(l *Link) {
		n := 0
		for f := range l.Frames() {
			if n++; n == 50 && l.id%2 == 0 {
				l.Close(1000, "owner done")
			}
			l.Send(f)
		}
	}})
	edge := startNode(t, srv, Config{ID: "edge"})
	var wg sync.WaitGroup
	for i := range 20 {
		l, err := edge.Dial(ctxT(t), "owner", "room", nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range l.Frames() {
			}
		})
		wg.Go(func() {
			for j := 0; j < 200; j++ {
				if l.Send([]byte("x")) != nil {
					return
				}
				if j == 100+i {
					wg.Go(func() { l.Close(1000, "edge done") })
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, 5*testTTL, "every link to end on both nodes", func() bool {
		return edge.Status().Links == 0 && owner.Status().Links == 0
	})
}
