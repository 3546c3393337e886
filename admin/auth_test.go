package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

type endpoint struct {
	method, path, body string
	serverWide         bool // needs a server-wide admin, not a room's
}

var endpoints = []endpoint{
	{"GET", "/api/v1/rooms", "", true},
	{"GET", "/api/v1/rooms/r1", "", false},
	{"DELETE", "/api/v1/rooms/r1", "", false},
	{"DELETE", "/api/v1/rooms/r1/participants/alice", "", false},
	{"PATCH", "/api/v1/rooms/r1/participants/alice", `{"grants":{"subscribe":true}}`, false},
	{"POST", "/api/v1/rooms/r1/tracks/TR_x/mute", `{"muted":true}`, false},
	{"POST", "/api/v1/tokens", `{"identity":"x","room":"r1"}`, true},
	{"GET", "/api/v1/events", "", true},
	{"GET", "/debug/pprof/", "", true},
	{"GET", "/debug/pprof/cmdline", "", true},
}

// call sends a request with the given Authorization and returns the status
// and the error code of the JSON body.
func call(t *testing.T, base string, e endpoint, authz string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(e.method, base+e.path, bytes.NewBufferString(e.body))
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", e.method, e.path, err)
	}
	defer resp.Body.Close()
	var eb admin.ErrorBody
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &eb); err != nil {
			t.Errorf("%s %s: error body is not JSON: %q", e.method, e.path, data)
		}
	}
	return resp.StatusCode, eb.Error.Code
}

// Every endpoint refuses a request without the admin grant, whatever else
// the credentials allow, with a JSON error naming the code; a server-wide
// admin passes every one.
func TestEveryEndpointRefusesNonAdmins(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sdktest.Join(t, ctx, srv, "alice", "r1", sdk.Options{})
	key, secret, _ := srv.DevKey()
	all := protocol.AllGrants()
	roomAdmin := all
	roomAdmin.RoomAdmin = true
	participant := "Bearer " + sdktest.Token(t, srv, "alice", "r1", all)
	otherRoomAdmin := "Bearer " + sdktest.Token(t, srv, "op", "r2", roomAdmin)
	thisRoomAdmin := "Bearer " + sdktest.Token(t, srv, "op", "r1", roomAdmin)
	serverAdmin := "Bearer " + sdktest.Token(t, srv, "op", admin.AllRooms, roomAdmin)
	everyoneButAdmin := "Bearer " + sdktest.Token(t, srv, "op", admin.AllRooms, all)
	stale := func(e endpoint) string {
		return admin.Sign(key, secret, e.method, e.path, []byte(e.body), time.Now().Add(-admin.SignatureWindow-time.Minute))
	}
	wrongSecret := func(e endpoint) string {
		return admin.Sign(key, "not-the-secret", e.method, e.path, []byte(e.body), time.Now())
	}
	tampered := func(e endpoint) string {
		return admin.Sign(key, secret, e.method, e.path, []byte(e.body+" "), time.Now())
	}

	for _, e := range endpoints {
		refused := map[string]string{
			"no credentials":              "",
			"garbage token":               "Bearer x.y.z",
			"stale signature":             stale(e),
			"wrong secret":                wrongSecret(e),
			"body differs from signature": tampered(e),
		}
		for what, authz := range refused {
			if st, code := call(t, srv.URL(), e, authz); st != http.StatusUnauthorized || code != admin.CodeUnauthorized {
				t.Errorf("%s %s with %s: %d %q, want 401 unauthorized", e.method, e.path, what, st, code)
			}
		}
		forbidden := map[string]string{
			"participant token":            participant,
			"roomAdmin of another room":    otherRoomAdmin,
			"room \"*\" without roomAdmin": everyoneButAdmin,
		}
		if e.serverWide {
			forbidden["roomAdmin of the room"] = thisRoomAdmin
		}
		for what, authz := range forbidden {
			if st, code := call(t, srv.URL(), e, authz); st != http.StatusForbidden || code != admin.CodeForbidden {
				t.Errorf("%s %s with %s: %d %q, want 403 forbidden", e.method, e.path, what, st, code)
			}
		}
	}
	if r, err := sdk.Join(ctx, srv.URL(), strings.TrimPrefix(serverAdmin, "Bearer "), sdk.Options{NoAutoReconnect: true}); err == nil {
		r.Leave()
		t.Error("a server admin token joined room \"*\"")
	}
	// The events stream would not end: the admins' check uses the rest.
	for _, e := range endpoints {
		if e.path == "/api/v1/events" || e.method == "DELETE" {
			continue
		}
		for what, authz := range map[string]string{"server admin": serverAdmin, "signature": admin.Sign(key, secret, e.method, e.path, []byte(e.body), time.Now())} {
			if st, _ := call(t, srv.URL(), e, authz); st == http.StatusUnauthorized || st == http.StatusForbidden {
				t.Errorf("%s %s as %s: refused with %d", e.method, e.path, what, st)
			}
		}
	}
}

// Tokens minted by the API join; grants updates show; closing a room ends
// every session in it.
func TestMintUpdateGrantsAndCloseRoom(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api := adminClient(srv)
	tok, err := api.MintToken(ctx, admin.TokenRequest{Identity: "carol", Room: "r3", Grants: protocol.AllGrants(), TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	carol, err := sdk.Join(ctx, srv.URL(), tok, sdk.Options{})
	if err != nil {
		t.Fatalf("join with a minted token: %v", err)
	}
	defer carol.Leave()
	if _, err := api.MintToken(ctx, admin.TokenRequest{Identity: "x", Room: "r3", TTL: "forever"}); !isAPIError(err, http.StatusBadRequest, admin.CodeBadRequest) {
		t.Errorf("bad ttl: %v, want bad_request", err)
	}
	p, err := api.UpdateGrants(ctx, "r3", "carol", protocol.Grants{Subscribe: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Grants.PublishData || !p.Grants.Subscribe {
		t.Errorf("grants after the update: %+v", p.Grants)
	}
	if _, err := carol.SendChat(ctx, "hello"); err == nil {
		t.Error("chat allowed after publishData was taken away")
	}
	rooms, err := api.ListRooms(ctx)
	if err != nil || len(rooms) != 1 || rooms[0].Name != "r3" || rooms[0].NumParticipants != 1 {
		t.Fatalf("rooms = %+v, %v", rooms, err)
	}
	if err := api.CloseRoom(ctx, "r3"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-carol.Done():
	case <-ctx.Done():
		t.Fatal("carol's session did not end when the room closed")
	}
	sdktest.WaitFor(t, 10*time.Second, func() string { return "the room to go" }, func() bool {
		rooms, _ := api.ListRooms(ctx)
		return len(rooms) == 0
	})
	if err := api.CloseRoom(ctx, "r3"); !isAPIError(err, http.StatusNotFound, admin.CodeNotFound) {
		t.Errorf("closing a closed room: %v, want not_found", err)
	}
}
