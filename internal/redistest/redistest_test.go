package redistest

import (
	"context"
	"testing"
)

// A value written before a SIGKILL is still there after the restart:
// appendfsync always is on.
func TestKillRestartKeepsAcknowledgedWrites(t *testing.T) {
	s := Start(t)
	c := s.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("redis still answers after Kill")
	}
	s.Restart()
	got, err := c.Get(ctx, "k").Result()
	if err != nil || got != "v" {
		t.Fatalf("after restart: %q, %v; want v", got, err)
	}
}
