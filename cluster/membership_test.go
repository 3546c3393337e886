package cluster

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/prometheus/client_golang/prometheus"
)

func TestStartRefusesBadConfig(t *testing.T) {
	if _, err := Start(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "Client") {
		t.Fatalf("Start without a client: %v", err)
	}
	srv := redistest.Start(t)
	if _, err := Start(context.Background(), Config{Client: srv.Client(), ID: "a\nb"}); err == nil {
		t.Fatal("Start accepted an id with a newline")
	}
	if _, err := Start(context.Background(), Config{Client: srv.Client(), ID: strings.Repeat("x", maxRoomLen+1)}); err == nil {
		t.Fatal("Start accepted an over-long id")
	}
}

func TestMembersSeeEachOther(t *testing.T) {
	srv := redistest.Start(t)
	reg := prometheus.NewRegistry()
	a := startNode(t, srv, Config{ID: "a", URL: "http://a:7880", MediaAddr: "10.0.0.1:7882", Load: func() int { return 7 }, Registerer: reg})
	startNode(t, srv, Config{ID: "b", URL: "http://b:7880"})
	startNode(t, srv, Config{ID: "c", URL: "http://c:7880"})
	waitFor(t, 5*testTTL, "a to see three members", func() bool { return len(a.Members()) == 3 })
	ms := a.Members()
	if got := memberIDs(ms); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("members %v", got)
	}
	self := ms[0]
	if !self.Self || self.URL != "http://a:7880" || self.MediaAddr != "10.0.0.1:7882" || self.Load != 7 || self.Started.IsZero() || self.Incarnation == "" {
		t.Fatalf("self member %+v", self)
	}
	if ms[1].Self || ms[1].URL != "http://b:7880" {
		t.Fatalf("member b %+v", ms[1])
	}
	if got := gather(t, reg, "huddle_cluster_members", ""); got != 3 {
		t.Fatalf("members gauge %v", got)
	}
	st := a.Status()
	if st.ID != "a" || !st.RedisOK || !st.Registered || len(st.Members) != 3 {
		t.Fatalf("status %+v", st)
	}
}

// A node that stops refreshing (a crash: no deregistration) is gone from
// everyone's view within its TTL, and its key is gone from Redis.
func TestMemberExpiresWhenRefreshStops(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	a := startNode(t, srv, Config{ID: "a"})
	b := startNode(t, srv, Config{ID: "b"})
	waitFor(t, 5*testTTL, "two members", func() bool { return len(a.Members()) == 2 })
	b.crashForTest()
	waitFor(t, 5*testTTL, "b to expire from a's view", func() bool {
		return slices.Equal(memberIDs(a.Members()), []string{"a"})
	})
	if n, err := rdb.Exists(context.Background(), memberKey("b")).Result(); err != nil || n != 0 {
		t.Fatalf("b's member key: exists=%d err=%v", n, err)
	}
	if ok, _ := rdb.SIsMember(context.Background(), membersIndex, "b").Result(); ok {
		t.Fatal("b is still in the members index")
	}
}

// Close deletes the member key at once, ends every link and every
// goroutine the node started (Accept callbacks included).
func TestCloseDeregistersAndJoinsGoroutines(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	rdb.Ping(context.Background())
	before := runtime.NumGoroutine()

	accepted := make(chan *Link, 1)
	a := startNode(t, srv, Config{ID: "a", Accept: func(l *Link) {
		accepted <- l
		for range l.Frames() {
		}
	}})
	b := startNode(t, srv, Config{ID: "b"})
	l, err := b.Dial(ctxT(t), "a", "room", []byte("join"))
	if err != nil {
		t.Fatal(err)
	}
	al := <-accepted
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if code, _ := l.CloseReason(); code != CodeNodeClosing {
		t.Fatalf("dialer's link after Close: code %d", code)
	}
	if _, err := b.Dial(ctxT(t), "a", "room", nil); !errors.Is(err, ErrNodeClosed) {
		t.Fatalf("Dial after Close: %v", err)
	}
	select {
	case <-al.Done():
	case <-time.After(5 * testTTL):
		t.Fatal("the owner's link did not end after the dialer closed")
	}
	if code, reason := al.CloseReason(); code != CodeNodeClosing || reason == "" {
		t.Fatalf("owner's link: %d %q", code, reason)
	}
	if n, _ := rdb.Exists(context.Background(), memberKey("b")).Result(); n != 0 {
		t.Fatal("b's member key survived Close")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The nodes' Redis clients stay open until the test's cleanup; they
	// hold no goroutines, so the count must come all the way back.
	waitFor(t, 10*time.Second, "goroutines to come back", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// Redis restarted under a running cluster: links end with a clear reason,
// Status shows the trouble, and afterwards the nodes are members again,
// placement and the relay work.
func TestRedisRestartClosesLinksAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	echo := func(l *Link) {
		for f := range l.Frames() {
			l.Send(f)
		}
	}
	a := startNode(t, srv, Config{ID: "a", Accept: echo})
	b := startNode(t, srv, Config{ID: "b"})
	waitFor(t, 5*testTTL, "two members", func() bool { return len(b.Members()) == 2 })
	l, err := b.Dial(ctxT(t), "a", "room", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	select {
	case <-l.Done():
	case <-time.After(10 * testTTL):
		t.Fatal("link still open after Redis was killed")
	}
	if code, reason := l.CloseReason(); code != CodeRelayDown || !strings.Contains(reason, "relay") {
		t.Fatalf("link closed with %d %q; want %d and a relay reason", code, reason, CodeRelayDown)
	}
	waitFor(t, 10*testTTL, "status to show Redis down", func() bool {
		st := a.Status()
		return !st.RedisOK && st.LastError != ""
	})
	if _, err := b.Dial(ctxT(t), "a", "room", nil); err == nil {
		t.Fatal("Dial succeeded with Redis down")
	}
	srv.Restart()
	waitFor(t, 20*testTTL, "both nodes to be members again", func() bool {
		return len(a.Members()) == 2 && len(b.Members()) == 2 && a.Status().RedisOK && b.Status().RedisOK
	})
	o, err := b.Place(ctxT(t), "after-restart")
	if err != nil || o.Node == "" || o.Epoch != 1 {
		t.Fatalf("Place after restart: %+v %v", o, err)
	}
	// The subscription is back too: a new link round-trips.
	var l2 *Link
	waitFor(t, 20*testTTL, "a link to open after the restart", func() bool {
		l2, err = b.Dial(ctxT(t), "a", "room", nil)
		return err == nil
	})
	if err := l2.Send([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-l2.Frames():
		if string(f) != "ping" {
			t.Fatalf("echo %q", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no echo after the restart")
	}
}
