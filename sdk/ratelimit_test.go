package sdk_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestOfferDroppedByRateLimitSentAgain: a bot past its message rate has its
// publisher offers dropped (the server refuses each with rate_limited, ref
// "offer"); the SDK keeps their tracks and sends the offers again once
// the limit refills, so the other participant gets the media. The rate is
// shrunk (burst 20, one message a second) as it is what the test is
// about: the flood empties alice's bucket, so her offer that follows at
// once finds it empty.
func TestOfferDroppedByRateLimitSentAgain(t *testing.T) {
	srv := startLimited(t, 1, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, dropped := joinCountingDrops(t, ctx, srv)
	bLog := newFrameLog()
	join(t, ctx, srv, "bob", "limited", sdk.Options{OnTrack: bLog.onTrack})
	waitFor(t, "alice's first negotiation to finish", 20*time.Second, publisherConnected(a))

	flood(t, a)
	audio := publishMedia(ctx, t, a) // two offers (audio, video), each sent at once
	waitFor(t, "bob to get 50 video and audio frames despite the rate limit ("+describe(bLog)+")", 30*time.Second, func() bool {
		return bLog.count("video") >= 50 && bLog.count("audio") >= 50
	})
	if dropped.Load() == 0 {
		t.Fatal("no publisher offer was dropped by the rate limit: the test did not test it")
	}
	if err := audio.Err(); err != nil {
		t.Errorf("audio track: %v after a rate limited offer", err)
	}
	t.Logf("%d offers dropped and sent again", dropped.Load())
}

// TestFirstOfferDroppedByRateLimitSentAgain: the very first publisher
// offer (sent by Join, with no earlier answer to fall back on) dropped by
// the rate limit is sent again, and the publisher connects. The join
// takes the only token of the burst and the bucket refills every two
// seconds, so the offer that follows the join at once finds it empty.
func TestFirstOfferDroppedByRateLimitSentAgain(t *testing.T) {
	srv := startLimited(t, 0.5, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, dropped := joinCountingDrops(t, ctx, srv)
	waitFor(t, "alice's publisher to connect", 20*time.Second, publisherConnected(a))
	if dropped.Load() == 0 {
		t.Fatal("alice's first offer was not dropped by the rate limit: the test did not test it")
	}
}

// TestChatDroppedByRateLimitReturns: SendChat past the message rate
// returns the server's rate_limited refusal instead of waiting for an echo
// that never comes, and a chat after the limit refills is stored.
func TestChatDroppedByRateLimitReturns(t *testing.T) {
	srv := startLimited(t, 1, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := join(t, ctx, srv, "alice", "limited", sdk.Options{})
	flood(t, a)
	sendCtx, sendCancel := context.WithTimeout(ctx, 20*time.Second)
	defer sendCancel()
	_, err := a.SendChat(sendCtx, "hello")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeRateLimited {
		t.Fatalf("SendChat past the rate limit: %v, want a rate_limited refusal", err)
	}
	for {
		m, err := a.SendChat(ctx, "hello again")
		if err == nil {
			if m.Text != "hello again" {
				t.Errorf("stored %q", m.Text)
			}
			break
		}
		if !errors.As(err, &pe) || pe.Code != protocol.CodeRateLimited {
			t.Fatalf("SendChat after the flood: %v", err)
		}
		time.Sleep(500 * time.Millisecond) // the limit refills one message a second
	}
}

// TestOfferRetryStoppedOnLeave: the timer that would send a dropped offer
// again belongs to the Room: Leave stops it (with a long delay, so it is
// still armed when the bot leaves).
func TestOfferRetryStoppedOnLeave(t *testing.T) {
	defer sdk.SetOfferRetryDelay(time.Hour)()
	srv := startLimited(t, 0.5, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := join(t, ctx, srv, "alice", "limited", sdk.Options{})
	waitFor(t, "alice's dropped first offer to wait for its retry", 20*time.Second, a.RetryArmed)
	if err := a.Leave(); err != nil {
		t.Fatal(err)
	}
	if a.RetryArmed() {
		t.Fatal("the retry of a dropped offer is still armed after Leave")
	}
}

// startLimited runs a server whose message rate limit is rate a second
// with the given burst; everything else is the production default.
func startLimited(t *testing.T, rate float64, burst int) *node.Node {
	t.Helper()
	return startServerWith(t, func(c *node.Config) {
		c.Signaling.MessageRate, c.Signaling.MessageBurst = rate, burst
	})
}

// joinCountingDrops joins alice, counting her publisher offers the rate
// limit dropped; any other refusal of an offer fails the test.
func joinCountingDrops(t *testing.T, ctx context.Context, srv *node.Node) (*sdk.Room, *atomic.Int32) {
	t.Helper()
	dropped := new(atomic.Int32)
	a := join(t, ctx, srv, "alice", "limited", sdk.Options{
		OnError: func(e *protocol.Error) {
			if e.Ref != protocol.TypeOffer {
				return
			}
			if e.Code != protocol.CodeRateLimited {
				t.Errorf("offer refused with %s: %s", e.Code, e.Message)
			}
			dropped.Add(1)
		},
	})
	return a, dropped
}

// flood sends far more messages than a burst of 20 in a row, emptying the
// bot's bucket.
func flood(t *testing.T, r *sdk.Room) {
	t.Helper()
	for range 100 {
		if err := r.SendRaw(&protocol.SetPresence{State: protocol.PresenceOnline}); err != nil {
			t.Fatal(err)
		}
	}
}

// publisherConnected: r's publisher PeerConnection is stable (its offer
// answered) and connected.
func publisherConnected(r *sdk.Room) func() bool {
	return func() bool {
		pc := r.PublisherPC()
		return pc.SignalingState() == webrtc.SignalingStateStable && pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	}
}

// TestAnswerDroppedByRateLimitOfferedAgain: a bot past its message rate
// has its answer to the server's subscriber offer dropped; the server says
// so (rate_limited, ref "answer") and sends the offer again a second later,
// so the bot still gets the new tracks. Without that, every later offer
// waited for the lost answer. Bob floods presence updates (emptying his
// bucket before alice publishes) until one of his answers has been
// dropped, then stops and lets the limit refill.
func TestAnswerDroppedByRateLimitOfferedAgain(t *testing.T) {
	srv := startLimited(t, 2, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var dropped, limited atomic.Int32
	bLog := newFrameLog()
	b := join(t, ctx, srv, "bob", "limited", sdk.Options{OnTrack: bLog.onTrack, OnError: func(e *protocol.Error) {
		switch {
		case e.Code != protocol.CodeRateLimited:
		case e.Ref == protocol.TypeAnswer:
			dropped.Add(1)
		case e.Ref == "":
			limited.Add(1) // bob's bucket is empty
		}
	}})
	a := join(t, ctx, srv, "alice", "limited", sdk.Options{})
	stop, flooded := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flooded)
		for dropped.Load() == 0 {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			_ = b.SendRaw(&protocol.SetPresence{State: protocol.PresenceOnline})
		}
	}()
	defer func() { close(stop); <-flooded }()
	waitFor(t, "bob's flood to empty his bucket", 20*time.Second, func() bool { return limited.Load() > 0 })
	publishMedia(ctx, t, a)
	waitFor(t, "one of bob's answers to be dropped by the rate limit", 20*time.Second, func() bool { return dropped.Load() > 0 })
	waitFor(t, "bob to get 50 video and audio frames despite the dropped answer ("+describe(bLog)+")", 30*time.Second, func() bool {
		return bLog.count("video") >= 50 && bLog.count("audio") >= 50
	})
	t.Logf("%d answers dropped", dropped.Load())
}
