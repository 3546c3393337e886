package sdk_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// The errors a newcomer meets first say what to do about them.
func TestErrorsSayWhatToDo(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	forged, err := auth.Mint("APIother", "other-secret", auth.Claims{Identity: "x", Room: "r", Grants: protocol.AllGrants()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url, token, want string
	}{
		{"no server", closed, "t", "huddle serve"},
		{"bad scheme", "ftp://localhost", "t", "scheme must be http, https, ws or wss"},
		{"token from another server", srv.URL(), forged, "huddle token"},
	} {
		_, err := sdk.Join(ctx, tc.url, tc.token, sdk.Options{NoAutoReconnect: true})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want it to mention %q", tc.name, err, tc.want)
		}
	}

	watcher, err := sdk.Join(ctx, srv.URL(), mintToken(t, srv, "watcher", "r", protocol.Grants{Subscribe: true}), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Leave()
	if _, err := watcher.PublishTrack(sdk.VP8, "camera"); err == nil || !strings.Contains(err.Error(), "huddle token --grants") {
		t.Errorf("publish without the grant: %v", err)
	}
	if _, err := sdk.DevToken(ctx, closed, "x", "r"); err == nil || !strings.Contains(err.Error(), "is a huddle server running") {
		t.Errorf("dev token from nowhere: %v", err)
	}
}
