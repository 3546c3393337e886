package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
)

// The admin commands list a room, remove a participant and close a room
// on a real server, signing with its API key; a wrong secret is refused
// with the API's error code.
func TestAdminCommands(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := sdktest.Join(t, ctx, srv, "alice", "standup", sdk.Options{})
	sdktest.Join(t, ctx, srv, "bob", "standup", sdk.Options{})
	key, secret, _ := srv.DevKey()
	run := func(cmd func([]string, *bytes.Buffer) error, args ...string) (string, error) {
		var out bytes.Buffer
		err := cmd(append(args, "--url", srv.URL(), "--api-key", key), &out)
		return out.String(), err
	}
	roomsCmd := func(a []string, out *bytes.Buffer) error { return rooms(a, out) }
	partsCmd := func(a []string, out *bytes.Buffer) error { return participants(a, out) }

	out, err := run(roomsCmd, "list", "--api-secret", secret)
	if err != nil || !strings.Contains(out, "standup") || !strings.Contains(out, "2") {
		t.Fatalf("rooms list: %q, %v", out, err)
	}
	out, err = run(partsCmd, "list", "standup", "--api-secret", secret)
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "bob") {
		t.Fatalf("participants list: %q, %v", out, err)
	}
	if _, err := run(partsCmd, "remove", "standup", "alice", "--api-secret", secret); err != nil {
		t.Fatal(err)
	}
	<-alice.Done()
	out, err = run(roomsCmd, "show", "standup", "--api-secret", secret, "--json")
	if err != nil || strings.Contains(out, `"alice"`) || !strings.Contains(out, `"bob"`) {
		t.Fatalf("rooms show after the removal: %q, %v", out, err)
	}
	if _, err := run(roomsCmd, "list", "--api-secret", "wrong"); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("a wrong secret: %v, want unauthorized", err)
	}
	if _, err := run(roomsCmd, "close", "standup", "--api-secret", secret); err != nil {
		t.Fatal(err)
	}
	out, err = run(roomsCmd, "list", "--api-secret", secret)
	if err != nil || strings.Contains(out, "standup") {
		t.Errorf("rooms list after close: %q, %v", out, err)
	}
	if _, err := run(roomsCmd, "frobnicate", "--api-secret", secret); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("an unknown subcommand: %v, want the usage", err)
	}
}
