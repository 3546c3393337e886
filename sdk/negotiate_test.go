package sdk

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// levels records the level of every log line by message.
type levels struct {
	mu  sync.Mutex
	got map[string]slog.Level
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got[r.Message] = r.Level
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }

// The server's offer that crosses the room's close (or Pion's own close on
// the server's DTLS close) is teardown, logged at debug; an offer the open
// connection refuses is a fault, logged as a warning.
func TestSubscriberOfferOnAClosedConnectionIsNoWarning(t *testing.T) {
	remote, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	if _, err := remote.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	offer, err := remote.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		closed bool
		sdp    string
		want   slog.Level
	}{
		{"closed connection", true, offer.SDP, slog.LevelDebug},
		{"malformed offer", false, "v=0\r\nnonsense\r\n", slog.LevelWarn},
	} {
		pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		if c.closed {
			_ = pc.Close()
		}
		l := &levels{got: map[string]slog.Level{}}
		r := &Room{log: slog.New(l), sub: pc}
		r.handleSubscriberOffer(&protocol.Offer{Target: protocol.TargetSubscriber, SDP: c.sdp})
		_ = pc.Close()
		if got, ok := l.got["subscriber offer"]; !ok || got != c.want {
			t.Errorf("%s: logged %v (logged at all: %v), want %v", c.name, got, ok, c.want)
		}
	}
}
