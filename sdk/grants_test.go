package sdk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Without the publishData grant the server refuses the cursors data
// channel (data published to the room) with a forbidden error; documents
// stay readable.
func TestPublishDataGrantEnforced(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan *protocol.Error, 8)
	r, err := sdk.Join(ctx, srv.URL(), mintToken(t, srv, "viewer", "g", protocol.Grants{Subscribe: true}), sdk.Options{
		OnError: func(e *protocol.Error) { errs <- e },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Leave() })
	select {
	case e := <-errs:
		if e.Code != protocol.CodeForbidden || !strings.Contains(e.Message, "cursors") {
			t.Errorf("got %s: %s, want forbidden for the cursors channel", e.Code, e.Message)
		}
	case <-ctx.Done():
		t.Fatal("no forbidden error for a data channel opened without publishData")
	}
	if _, err := r.Docs().List(ctx); err != nil {
		t.Errorf("documents unreadable without publishData: %v", err)
	}
}
