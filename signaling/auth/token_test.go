package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func TestMintVerifyRoundTrip(t *testing.T) {
	key, secret := NewKeyPair()
	keys := Keys{key: secret}
	tok, err := Mint(key, secret, Claims{Identity: "alice", Name: "Alice", Room: "r1", Grants: protocol.AllGrants()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := keys.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity != "alice" || c.Name != "Alice" || c.Room != "r1" || !c.Grants.Publish || c.Grants.RoomAdmin {
		t.Fatalf("claims = %+v", c)
	}
}

func TestVerifyRefuses(t *testing.T) {
	key, secret := NewKeyPair()
	keys := Keys{key: secret}
	good := Claims{Identity: "a", Room: "r"}
	expired, _ := Mint(key, secret, good, time.Nanosecond)
	time.Sleep(2 * time.Millisecond) // let the nanosecond ttl pass; not timing luck, 1000x margin
	otherKey, otherSecret := NewKeyPair()
	foreign, _ := Mint(otherKey, otherSecret, good, time.Hour)
	wrongSecret, _ := Mint(key, "not-the-secret", good, time.Hour)
	cases := map[string]string{
		"empty":        "",
		"garbage":      "not.a.jwt",
		"expired":      expired,
		"unknown key":  foreign,
		"wrong secret": wrongSecret,
	}
	want := map[string]string{
		"empty":        "no token",
		"garbage":      "token is malformed",
		"expired":      "token has expired",
		"unknown key":  "unknown API key",
		"wrong secret": "signature is invalid",
	}
	for name, tok := range cases {
		_, err := keys.Verify(tok)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: err = %v, want ErrInvalid saying %q", name, err, want[name])
		}
	}
	if _, err := Mint(key, secret, Claims{Room: "r"}, time.Hour); err == nil {
		t.Error("mint without identity succeeded")
	}
}
