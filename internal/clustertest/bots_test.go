package clustertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// bot is an SDK participant of a failure test: it records what it received
// per publisher, when it reconnected, and which of its edits the server
// acknowledged.
type bot struct {
	id   string
	room *sdk.Room
	pub  *sdktest.Publisher

	mu         sync.Mutex
	frames     map[string]*sdktest.FrameLog // by publisher identity
	reconnects []time.Time
	drops      []time.Time

	edits editLog
}

// editLog records a bot's edits: each inserts a unique token, one at a
// time, and is acknowledged (WaitSynced returned nil), refused (a
// *sdk.DocError), or still unknown when editing stopped.
type editLog struct {
	mu      sync.Mutex
	sent    []string
	acked   []string
	refused map[string]error
	ackedAt []time.Time
	// reported are the errors the document reported (OnError), with when.
	reported []reportedErr
}

type reportedErr struct {
	at  time.Time
	err error
}

func (e *editLog) snapshot() (sent, acked []string, refused map[string]error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	refused = map[string]error{}
	for k, v := range e.refused {
		refused[k] = v
	}
	return append([]string(nil), e.sent...), append([]string(nil), e.acked...), refused
}

func (e *editLog) ackedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.acked)
}

// ackedSince counts acknowledgements after t.
func (e *editLog) ackedSince(t time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, at := range e.ackedAt {
		if at.After(t) {
			n++
		}
	}
	return n
}

// joinBot joins through url with production options (auto reconnect, the
// default timeout); it leaves when the test ends.
func joinBot(t testing.TB, ctx context.Context, c *Cluster, url, id, room string, media bool) *bot {
	t.Helper()
	b := &bot{id: id, frames: map[string]*sdktest.FrameLog{}}
	opts := sdk.Options{
		Logger: botLogger(),
		OnReconnect: func(protocol.Participant) {
			b.mu.Lock()
			b.reconnects = append(b.reconnects, time.Now())
			b.mu.Unlock()
		},
		OnReconnecting: func(error) {
			b.mu.Lock()
			b.drops = append(b.drops, time.Now())
			b.mu.Unlock()
		},
		// ReconnectTimeout stays the SDK's default: a failover must fit in it.
	}
	if media {
		opts.OnTrack = func(rt *sdk.RemoteTrack) { b.frameLog(rt.Participant.Identity).OnTrack(rt) }
	}
	r, err := sdk.Join(ctx, url, c.Token(id, room), opts)
	if err != nil {
		t.Fatalf("%s joins through %s: %v", id, url, err)
	}
	b.room = r
	t.Cleanup(func() {
		if b.pub != nil {
			b.pub.Stop()
		}
		r.Leave()
	})
	if media {
		p, err := sdktest.Publish(r, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
		if err != nil {
			t.Fatalf("%s publishes: %v", id, err)
		}
		b.pub = p
	}
	return b
}

func (b *bot) frameLog(publisher string) *sdktest.FrameLog {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.frames[publisher]
	if l == nil {
		l = sdktest.NewFrameLog()
		b.frames[publisher] = l
	}
	return l
}

// maxCounter is the highest VP8 frame counter received from publisher.
func (b *bot) maxCounter(publisher string) (uint32, bool) {
	c := b.frameLog(publisher).Counters(webrtc.MimeTypeVP8)
	if len(c) == 0 {
		return 0, false
	}
	m := c[0]
	for _, v := range c {
		m = max(m, v)
	}
	return m, true
}

func (b *bot) reconnectCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reconnects)
}

// edit inserts unique tokens at the start of doc, one at a time, waiting
// for each acknowledgement, until ctx ends. Position 0 is always between
// two tokens (a position read from the text, like its length, could fall
// inside a token that arrived meanwhile), so every token stays contiguous
// under OT and the final text can be checked by counting tokens.
func (b *bot) edit(ctx context.Context, doc *sdk.Document, every time.Duration) {
	doc.OnError(func(err error) {
		b.edits.mu.Lock()
		b.edits.reported = append(b.edits.reported, reportedErr{time.Now(), err})
		b.edits.mu.Unlock()
	})
	for i := 0; ctx.Err() == nil; i++ {
		tok := fmt.Sprintf("[%s:%d]", b.id, i)
		if err := doc.Insert(0, tok); err != nil {
			// Closed or not open yet: nothing was sent.
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
			continue
		}
		b.edits.mu.Lock()
		b.edits.sent = append(b.edits.sent, tok)
		b.edits.mu.Unlock()
		err := doc.WaitSynced(ctx)
		if ctx.Err() != nil && err != nil {
			// Editing stopped while this edit was in flight: settle it,
			// so that every acknowledged edit is known.
			wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = doc.WaitSynced(wctx)
			cancel()
			if wctx.Err() != nil {
				return
			}
		}
		b.edits.mu.Lock()
		var de *sdk.DocError
		switch {
		case err == nil:
			b.edits.acked = append(b.edits.acked, tok)
			b.edits.ackedAt = append(b.edits.ackedAt, time.Now())
		case errors.As(err, &de):
			if b.edits.refused == nil {
				b.edits.refused = map[string]error{}
			}
			b.edits.refused[tok] = err
		}
		b.edits.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

// botLogger is quiet unless HUDDLE_TEST_LOG is set: a failure test's
// bots reconnect by design, and 200 of them say so at length.
func botLogger() *slog.Logger {
	if os.Getenv("HUDDLE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// checkDocument asserts that text holds every acknowledged token exactly
// once and no token more than once.
func checkDocument(t testing.TB, text string, bots []*bot) (acked, sent int) {
	t.Helper()
	for _, b := range bots {
		s, a, refused := b.edits.snapshot()
		sent += len(s)
		acked += len(a)
		for _, tok := range a {
			if n := strings.Count(text, tok); n != 1 {
				t.Errorf("acknowledged edit %s is in the document %d times", tok, n)
			}
		}
		for _, tok := range s {
			if n := strings.Count(text, tok); n > 1 {
				t.Errorf("edit %s is in the document %d times", tok, n)
			}
			if _, ok := refused[tok]; ok && strings.Contains(text, tok) {
				t.Errorf("refused edit %s is in the document", tok)
			}
		}
	}
	return acked, sent
}

// readDocument joins a fresh participant through url and returns the
// document's text as the room's owner serves it.
func readDocument(t testing.TB, ctx context.Context, c *Cluster, url, room, docID string) string {
	t.Helper()
	r, err := sdk.Join(ctx, url, c.Token(fmt.Sprintf("checker-%d", time.Now().UnixNano()), room), sdk.Options{Logger: botLogger(), NoAutoReconnect: true})
	if err != nil {
		t.Fatalf("checker joins: %v", err)
	}
	defer r.Leave()
	d, err := r.Docs().Open(ctx, docID)
	if err != nil {
		t.Fatalf("checker opens the document: %v", err)
	}
	return d.Text()
}
