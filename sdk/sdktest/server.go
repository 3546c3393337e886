// Package sdktest helps test bots against a real Huddle server: it runs one
// in-process on loopback, mints tokens, and makes synthetic media whose
// frames carry a counter, so a receiver can check order, gaps and
// duplicates after any number of hops (SFU, recorder, player, WHIP).
package sdktest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Start runs a server with production defaults except its addresses
// (loopback, kernel-chosen ports) and data directory; it stops with the
// test. HUDDLE_TEST_LOG=1 shows its debug log.
func Start(t testing.TB) *node.Node { t.Helper(); return StartWith(t, nil) }

// StartWith lets a test change the configuration before the start.
func StartWith(t testing.TB, adjust func(*node.Config)) *node.Node {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("HUDDLE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	cfg := node.Config{
		HTTPAddr:     "127.0.0.1:0",
		MediaUDPAddr: "127.0.0.1:0",
		MediaTCPAddr: "127.0.0.1:0",
		DataDir:      t.TempDir(),
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// Join joins a bot with every grant, leaving when the test ends.
func Join(t testing.TB, ctx context.Context, srv *node.Node, identity, room string, opts sdk.Options) *sdk.Room {
	t.Helper()
	r, err := sdk.Join(ctx, srv.URL(), Token(t, srv, identity, room, protocol.AllGrants()), opts)
	if err != nil {
		t.Fatalf("%s joins: %v", identity, err)
	}
	t.Cleanup(func() { r.Leave() })
	return r
}

// Token mints a token for the server's dev key with the given grants.
func Token(t testing.TB, srv *node.Node, identity, room string, g protocol.Grants) string {
	t.Helper()
	key, secret, ok := srv.DevKey()
	if !ok {
		t.Fatal("sdktest: server is not in dev mode")
	}
	tok, err := auth.Mint(key, secret, auth.Claims{Identity: identity, Name: identity, Room: room, Grants: g}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// WaitFor polls cond every 20 ms until it holds, failing the test after
// timeout; what(…) describes the wait (called only on failure).
func WaitFor(t testing.TB, timeout time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
