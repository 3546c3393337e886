package sfu_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
)

// warnRecorder keeps the WARN and ERROR records logged with part=sfu (the
// media plane's logger, Pion's included).
type warnRecorder struct {
	sfu   bool
	mu    *sync.Mutex
	lines *[]string
}

func (h warnRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h warnRecorder) Handle(_ context.Context, r slog.Record) error {
	if h.sfu && r.Level >= slog.LevelWarn {
		line := r.Level.String() + " " + r.Message
		r.Attrs(func(a slog.Attr) bool {
			line += " " + a.String()
			return true
		})
		h.mu.Lock()
		*h.lines = append(*h.lines, line)
		h.mu.Unlock()
	}
	return nil
}

func (h warnRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	for _, a := range attrs {
		if a.Key == "part" && a.Value.String() == "sfu" {
			h.sfu = true
		}
	}
	return h
}

func (h warnRecorder) WithGroup(string) slog.Handler { return h }

// An ordinary call (join, publish, receive, hang up) logs no WARN or ERROR
// from the media plane: Pion's routine noise is demoted to debug, so that
// an operator's warnings mean something.
func TestOrdinaryCallLogsNoWarnings(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	srv, err := node.New(node.Config{
		HTTPAddr:     "127.0.0.1:0",
		MediaUDPAddr: "127.0.0.1:0",
		MediaTCPAddr: "127.0.0.1:0",
		DataDir:      t.TempDir(),
		Logger:       slog.New(warnRecorder{mu: &mu, lines: &lines}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rcv := newReceiver()
	bob := joinRoom(t, ctx, srv, "bob", "quiet", sdk.Options{OnTrack: rcv.onTrack})
	alice := joinRoom(t, ctx, srv, "alice", "quiet", sdk.Options{})
	pub := &publisher{}
	pctx, stop := context.WithCancel(ctx)
	pub.publish(pctx, t, alice, 1, 1)
	waitUntil(t, "bob receiving both tracks", func() bool { return rcv.tracksWithPackets(50) == 2 })
	stop()
	alice.Leave()
	bob.Leave()
	srv.Close()
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		t.Errorf("logged during an ordinary call: %s", l)
	}
}
