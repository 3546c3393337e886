package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/webhook"
)

type delivery struct {
	header http.Header
	body   []byte
	event  sdk.WebhookEvent
}

// receiver is a webhook endpoint that checks every delivery with the
// SDK's verifier. While down it answers 503; while stuck it holds
// requests until unstuck.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu      sync.Mutex
	got     []delivery
	invalid int
	down    bool
	stuck   chan struct{} // non-nil: requests wait for it to close
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	stuck, down, secret := rc.stuck, rc.down, rc.secret
	rc.mu.Unlock()
	if stuck != nil {
		<-stuck
	}
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytesReader(body))
	ev, err := sdk.VerifyWebhook(r, secret)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil {
		rc.invalid++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.got = append(rc.got, delivery{header: r.Header.Clone(), body: body, event: ev})
}

// ids are the distinct event ids received.
func (rc *receiver) ids() map[uint64]sdk.WebhookEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[uint64]sdk.WebhookEvent{}
	for _, d := range rc.got {
		out[d.event.ID] = d.event
	}
	return out
}

func startWith(t *testing.T, rc *receiver) *node.Node {
	srv := sdktest.StartWith(t, func(c *node.Config) {
		// Short backoffs: the test is about what arrives, not when.
		c.Webhooks = &webhook.Config{URLs: []string{rc.srv.URL}, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	})
	_, secret, _ := srv.DevKey()
	rc.mu.Lock()
	rc.secret = secret
	rc.mu.Unlock()
	return srv
}

// waitAllDelivered waits until every event the server kept reached rc.
func waitAllDelivered(t *testing.T, srv *node.Node, rc *receiver) []admin.Event {
	t.Helper()
	var missing []uint64
	sdktest.WaitFor(t, 30*time.Second, func() string { return "events " + strconv.Quote(sprint(missing)) + " to be delivered" }, func() bool {
		got := rc.ids()
		missing = missing[:0]
		for _, e := range srv.Events().History() {
			if _, ok := got[e.ID]; !ok {
				missing = append(missing, e.ID)
			}
		}
		return len(missing) == 0
	})
	return srv.Events().History()
}

func sprint(ids []uint64) string {
	s := ""
	for _, id := range ids {
		s += strconv.FormatUint(id, 10) + " "
	}
	return s
}

// A scripted call: every event reaches the receiver, signed (the SDK's
// verifier accepts it), at least once; altered or replayed deliveries
// fail verification.
func TestWebhookGetsEveryEventOfACall(t *testing.T) {
	rc := newReceiver(t)
	srv := startWith(t, rc)
	key, _, _ := srv.DevKey()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice, err := sdk.Join(ctx, srv.URL(), sdktest.Token(t, srv, "alice", "call", allGrants()), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := sdk.Join(ctx, srv.URL(), sdktest.Token(t, srv, "bob", "call", allGrants()), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sdktest.Publish(alice, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	sdktest.WaitFor(t, 20*time.Second, func() string { return "bob to see alice's track" }, func() bool {
		for _, p := range bob.Participants() {
			if p.Identity == "alice" && len(p.Tracks) == 1 {
				return true
			}
		}
		return false
	})
	doc, err := alice.Docs().Create(ctx, "notes", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Docs().Delete(ctx, doc.ID); err != nil {
		t.Fatal(err)
	}
	pub.Stop()
	// The call ends with an admin closing the room: the SDK's Leave right
	// after other traffic is sometimes taken for a drop (the member then
	// stays for the 30 s resume grace), which is not what this test is
	// about. The close removes both, their tracks and the room.
	api := &admin.Client{URL: srv.URL(), APIKey: key, APISecret: rc.secret}
	if err := api.CloseRoom(ctx, "call"); err != nil {
		t.Fatal(err)
	}
	<-alice.Done()
	<-bob.Done()
	sdktest.WaitFor(t, 20*time.Second, func() string { return "the room to finish" }, func() bool {
		for _, e := range srv.Events().History() {
			if e.Type == admin.RoomFinished {
				return true
			}
		}
		return false
	})
	events := waitAllDelivered(t, srv, rc)
	count := map[string]int{}
	for _, e := range events {
		count[e.Type]++
	}
	want := map[string]int{
		admin.RoomStarted: 1, admin.ParticipantJoined: 2, admin.TrackPublished: 1, admin.DocumentCreated: 1,
		admin.DocumentDeleted: 1, admin.TrackUnpublished: 1, admin.ParticipantLeft: 2, admin.RoomFinished: 1,
	}
	for typ, n := range want {
		if count[typ] != n {
			t.Errorf("%d %s events, want %d (all: %v)", count[typ], typ, n, count)
		}
	}
	rc.mu.Lock()
	invalid, sample := rc.invalid, rc.got[0]
	rc.mu.Unlock()
	if invalid != 0 {
		t.Errorf("%d deliveries failed verification", invalid)
	}

	// The receiver's side: a genuine delivery verifies; altered, forged
	// or replayed ones do not.
	ts, _ := strconv.ParseInt(sample.header.Get(webhook.HeaderTimestamp), 10, 64)
	at := time.Unix(ts, 0)
	if err := webhook.Verify(rc.secret, sample.header, sample.body, at, 0); err != nil {
		t.Fatalf("a genuine delivery: %v", err)
	}
	tampered := append([]byte(nil), sample.body...)
	tampered[len(tampered)/2] ^= 1
	if err := webhook.Verify(rc.secret, sample.header, tampered, at, 0); err == nil {
		t.Error("a tampered body verified")
	}
	if err := webhook.Verify("another-secret", sample.header, sample.body, at, 0); err == nil {
		t.Error("a delivery verified with the wrong secret")
	}
	if err := webhook.Verify(rc.secret, sample.header, sample.body, at.Add(webhook.DefaultWindow+time.Second), 0); err == nil {
		t.Error("a delivery replayed after the window verified")
	}
	moved := sample.header.Clone()
	moved.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts+1, 10))
	if err := webhook.Verify(rc.secret, moved, sample.body, at, 0); err == nil {
		t.Error("a delivery with a changed timestamp verified")
	}
}

// A receiver that hangs, then fails, then comes back gets every event in
// the end; meanwhile joins, chat and leaves go on as usual (they never
// wait for webhooks).
func TestWebhookReceiverDownGetsEventsLater(t *testing.T) {
	rc := newReceiver(t)
	stuck := make(chan struct{})
	rc.stuck = stuck
	srv := startWith(t, rc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	host := sdktest.Join(t, ctx, srv, "host", "busy", sdk.Options{})
	for i := range 8 {
		b, err := sdk.Join(ctx, srv.URL(), sdktest.Token(t, srv, "bot"+strconv.Itoa(i), "busy", allGrants()), sdk.Options{})
		if err != nil {
			t.Fatalf("join while the webhook receiver hangs: %v", err)
		}
		if _, err := b.SendChat(ctx, "hi"); err != nil {
			t.Fatalf("chat while the webhook receiver hangs: %v", err)
		}
		b.Leave()
	}
	if n := len(rc.ids()); n != 0 {
		t.Fatalf("%d events delivered while the receiver hung", n)
	}
	// Now it fails outright for a while: attempts are retried.
	rc.mu.Lock()
	rc.down, rc.stuck = true, nil
	rc.mu.Unlock()
	close(stuck)
	sdktest.WaitFor(t, 20*time.Second, func() string { return "retries" }, func() bool { return srv.WebhookStats().Failed >= 3 })
	if _, err := host.SendChat(ctx, "still here"); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.down = false
	rc.mu.Unlock()
	events := waitAllDelivered(t, srv, rc)
	joins := 0
	for _, e := range events {
		if e.Type == admin.ParticipantJoined {
			joins++
		}
	}
	if joins != 9 {
		t.Errorf("%d joins delivered, want 9", joins)
	}
	// An event made after the last one waited for (a bot's leave noticed
	// late) may still be on its way: the queue must drain, never drop.
	sdktest.WaitFor(t, 20*time.Second, func() string { return fmt.Sprintf("stats %+v: want nothing left", srv.WebhookStats()) },
		func() bool { return srv.WebhookStats().Queued == 0 })
	if st := srv.WebhookStats(); st.Dropped != 0 {
		t.Errorf("stats %+v: want nothing dropped", st)
	}
}
